"""Rule profiles: when a vote is valid (quorum) and when it passes (majority).

Sources and thresholds are in docs/voting-rules.md. All arithmetic is on whole
numbers (``a * den > b * num``), so no rounding decides a village's vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from ..errors import BadRequest

#: the Organic Law of Village Committees (2018 revision), articles 22 and 26
VILLAGERS_ASSEMBLY = "villagers_assembly"
REPRESENTATIVES = "representatives_meeting"
SIMPLE_MAJORITY = "simple_majority"
TWO_THIRDS = "two_thirds"
CUSTOM = "custom"
PROFILES = (VILLAGERS_ASSEMBLY, REPRESENTATIVES, SIMPLE_MAJORITY, TWO_THIRDS, CUSTOM)

BASES = ("eligible", "present", "cast")


@dataclass(frozen=True)
class Threshold:
    """``count`` of ``of`` must exceed (strict) or reach num/den."""

    num: int
    den: int
    of: str
    strict: bool

    def met(self, count: int, bases: dict[str, int]) -> bool:
        base = bases[self.of]
        if self.strict:
            return count * self.den > base * self.num
        return count * self.den >= base * self.num

    def as_dict(self) -> dict:
        return {"num": self.num, "den": self.den, "of": self.of, "strict": self.strict}

    @property
    def compare(self) -> str:
        """For showing: ">" (must exceed) or "≥" (must reach)."""
        return ">" if self.strict else "≥"

    @property
    def fraction(self) -> str:
        return f"{self.num}/{self.den}"


@dataclass(frozen=True)
class Rule:
    profile: str
    quorum: Threshold | None
    majority: Threshold
    #: art. 22's alternative quorum: representatives of two thirds of the households
    households_quorum: bool = False

    def as_dict(self) -> dict:
        return {
            "profile": self.profile,
            "quorum": self.quorum.as_dict() if self.quorum else None,
            "majority": self.majority.as_dict(),
            "households_quorum": self.households_quorum,
        }


def rule_for(profile: str, custom: dict | None = None) -> Rule:
    if profile == VILLAGERS_ASSEMBLY:
        # art. 22: more than half of the adult villagers, or representatives of two
        # thirds of the households; decisions by more than half of those present
        return Rule(
            profile,
            Threshold(1, 2, "eligible", True),
            Threshold(1, 2, "present", True),
            households_quorum=True,
        )
    if profile == REPRESENTATIVES:
        # art. 26: at least two thirds of its members present; more than half of those present
        return Rule(profile, Threshold(2, 3, "eligible", False), Threshold(1, 2, "present", True))
    if profile == SIMPLE_MAJORITY:
        return Rule(profile, None, Threshold(1, 2, "cast", True))
    if profile == TWO_THIRDS:
        return Rule(profile, None, Threshold(2, 3, "cast", False))
    if profile == CUSTOM:
        return _custom(custom or {})
    raise BadRequest(f"rule must be one of {', '.join(PROFILES)}")


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _threshold(raw: object, what: str) -> Threshold:
    if not isinstance(raw, dict):
        raise BadRequest(f"{what} must be {{num, den, of, strict}}")
    num, den, of, strict = raw.get("num"), raw.get("den"), raw.get("of"), raw.get("strict", True)
    if not (_whole(num) and _whole(den) and 0 <= num <= den and den > 0):
        raise BadRequest(f"{what}: num and den must be whole numbers with 0 <= num <= den, den > 0")
    if of not in BASES:
        raise BadRequest(f"{what}: of must be one of {', '.join(BASES)}")
    if not isinstance(strict, bool):
        raise BadRequest(f"{what}: strict must be true or false")
    return Threshold(num, den, of, strict)


def _custom(raw: dict) -> Rule:
    quorum = raw.get("quorum")
    threshold = _threshold(quorum, "quorum") if quorum is not None else None
    if threshold is not None and threshold.of != "eligible":
        raise BadRequest("a quorum counts those present against the eligible: of must be eligible")
    return Rule(CUSTOM, threshold, _threshold(raw.get("majority"), "majority"))


def parse_rule(raw: object, meeting_kind: str) -> Rule:
    """A vote's rule: a profile name, a custom {profile: custom, ...}, or the meeting's default."""
    if raw is None:
        if meeting_kind in (VILLAGERS_ASSEMBLY, REPRESENTATIVES):
            return rule_for(meeting_kind)
        return rule_for(SIMPLE_MAJORITY)
    if isinstance(raw, str):
        return rule_for(raw)
    if isinstance(raw, dict) and raw.get("profile") == CUSTOM:
        return _custom(raw)
    if isinstance(raw, dict) and isinstance(raw.get("profile"), str):
        return rule_for(raw["profile"])
    raise BadRequest(f"rule must be one of {', '.join(PROFILES)} or a custom rule")


def rule_from_dict(stored: dict) -> Rule:
    quorum = stored.get("quorum")
    return Rule(
        stored["profile"],
        Threshold(**quorum) if quorum else None,
        Threshold(**stored["majority"]),
        stored.get("households_quorum", False),
    )


@dataclass(frozen=True)
class Decision:
    quorum_met: bool
    passed: bool


def decide(
    rule: Rule,
    *,
    yes: int,
    cast: int,
    present: int,
    eligible: int,
    households_present: int = 0,
    households: int = 0,
) -> Decision:
    """Quorum and majority under ``rule``. ``yes`` counts the first option (同意)."""
    bases = {"eligible": eligible, "present": present, "cast": cast}
    quorum_met = True
    if rule.quorum is not None:
        quorum_met = rule.quorum.met(present, bases)
        if not quorum_met and rule.households_quorum and households:
            quorum_met = households_present * 3 >= households * 2
    return Decision(quorum_met, quorum_met and rule.majority.met(yes, bases))
