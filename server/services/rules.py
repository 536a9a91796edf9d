"""Rule profiles: when a vote is valid (quorum) and when it passes (majority).

Sources and thresholds are in docs/voting-rules.md. All arithmetic is on whole
numbers (``a * den > b * num``), so no rounding decides a village's vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from ..errors import BadRequest, Phrase

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

    def needed(self, base: int) -> int:
        """The smallest whole ``count`` that meets the threshold against ``base``."""
        if self.strict:  # count * den > base * num
            return base * self.num // self.den + 1
        return -(-base * self.num // self.den)  # count * den >= base * num

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
    raise BadRequest("rule must be one of {profiles}", params={"profiles": ", ".join(PROFILES)})


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _threshold(raw: object, what: str) -> Threshold:
    if not isinstance(raw, dict):
        raise BadRequest("{what} must be {{num, den, of, strict}}", params={"what": Phrase(what)})
    num, den, of, strict = raw.get("num"), raw.get("den"), raw.get("of"), raw.get("strict", True)
    if not (_whole(num) and _whole(den) and 0 <= num <= den and den > 0):
        raise BadRequest(
            "{what}: num and den must be whole numbers with 0 <= num <= den, den > 0",
            params={"what": Phrase(what)},
        )
    if of not in BASES:
        raise BadRequest(
            "{what}: of must be one of {bases}",
            params={"what": Phrase(what), "bases": ", ".join(BASES)},
        )
    if not isinstance(strict, bool):
        raise BadRequest("{what}: strict must be true or false", params={"what": Phrase(what)})
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
    raise BadRequest(
        "rule must be one of {profiles} or a custom rule", params={"profiles": ", ".join(PROFILES)}
    )


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


#: where a profile's thresholds come from (docs/voting-rules.md); any other rule was
#: chosen or set by the committee for this meeting
SOURCES = {VILLAGERS_ASSEMBLY: "law_art_22", REPRESENTATIVES: "law_art_26"}
SET_FOR_THE_MEETING = "meeting"


def _part(threshold: Threshold, base: int) -> dict:
    return {
        "needed": threshold.needed(base),
        "of": base,
        "base": threshold.of,
        "num": threshold.num,
        "den": threshold.den,
        "strict": threshold.strict,
    }


def explain(
    rule: Rule,
    *,
    option: str,
    yes: int,
    cast: int,
    present: int,
    eligible: int,
    households_present: int = 0,
    households: int = 0,
) -> dict:
    """Why the vote passed or failed, from the very numbers :func:`decide` judges.

    ``needed`` is the smallest whole number that meets each threshold
    (:meth:`Threshold.needed`); ``outcome`` is ``passed``, ``not_passed`` or
    ``no_quorum``; the quorum's ``households`` is art. 22's alternative, given
    whenever the rule has it and the roll knows households. Shown in words by the
    pages and the minutes (server/services/vote_words.py, web/static/components/vote-words.js).
    """
    decision = decide(
        rule,
        yes=yes,
        cast=cast,
        present=present,
        eligible=eligible,
        households_present=households_present,
        households=households,
    )
    bases = {"eligible": eligible, "present": present, "cast": cast}
    quorum = None
    if rule.quorum is not None:
        quorum = {
            **_part(rule.quorum, bases[rule.quorum.of]),
            "present": present,
            "met": decision.quorum_met,
            "households": None,
        }
        if rule.households_quorum and households:
            needed = -(-households * 2 // 3)  # households_present * 3 >= households * 2
            quorum["households"] = {
                "needed": needed,
                "present": households_present,
                "total": households,
                "met": households_present >= needed,
            }
    majority = {
        **_part(rule.majority, bases[rule.majority.of]),
        "option": option,
        "got": yes,
        "met": rule.majority.met(yes, bases),
    }
    outcome = "passed" if decision.passed else "not_passed" if decision.quorum_met else "no_quorum"
    return {
        "rule": rule.profile,
        "source": SOURCES.get(rule.profile, SET_FOR_THE_MEETING),
        "quorum": quorum,
        "majority": majority,
        "outcome": outcome,
        "present": present,
        "eligible": eligible,
    }


def stored_explanation(result: dict) -> dict | None:
    """A closed vote's explanation; for a result stored before results carried one,
    worked out again from its own numbers (households unknown: None if that matters)."""
    if result.get("explanation"):
        return result["explanation"]
    try:
        rule = rule_from_dict(result["rule"])
        option, yes = next(iter(result["tally"].items()))
        explained = explain(
            rule,
            option=option,
            yes=yes,
            cast=result["cast"],
            present=result["present"],
            eligible=result["eligible"],
        )
    except (KeyError, TypeError, StopIteration):
        return None
    if explained["outcome"] != _outcome(result):
        return None  # decided by the households, which the old result does not hold
    return explained


def _outcome(result: dict) -> str:
    if not result.get("quorum_met"):
        return "no_quorum"
    return "passed" if result.get("passed") else "not_passed"
