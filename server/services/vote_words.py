"""A closed vote's explanation (``result.explanation``, :func:`.rules.explain`) in words.

The same message ids, under the same keys, as the browser's ``vote-i18n`` blob
(web/templates/_room.html, ``vote_words``) that web/static/components/vote-words.js
puts together the same way; so the minutes and the pages say the same sentences.
Message ids have ``{name}`` placeholders (never ``%``): ``gettext(message)`` translates,
:func:`fill` fills in. ``text`` escapes user text (an option's name) for the output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from math import gcd

Gettext = Callable[..., str]

#: key -> English message id; the browser's blob lists the same pairs
MESSAGES = {
    "explain_passed": "Passed: {got} for “{option}”; it needed {rule}, that is at least {needed}.",
    "explain_not_passed": (
        "Not passed: {got} for “{option}”; it needed {rule}, that is at least {needed}."
    ),
    "explain_no_quorum": (
        "Not valid, no quorum: {present} present; it needed {rule}, that is at least {needed}."
    ),
    "explain_no_quorum_households": (
        "Nor were members of two thirds of the households present: "
        "{got} of {total} households, at least {needed} needed."
    ),
    "explain_quorum_met": (
        "Quorum met: {present} present; it needed {rule}, that is at least {needed}."
    ),
    "explain_quorum_households": (
        "Quorum met by households: members of {got} of {total} households present; "
        "it needed two thirds of the households, that is at least {needed}."
    ),
    "explain_no_quorum_needed": "This rule sets no quorum; {present} present.",
    "explain_rule": "Rule: {rule} ({source})",
    "explain_threshold": "{cmp} {frac} of {base}",
    "explain_more_than": "more than",
    "explain_at_least": "at least",
    "explain_half": "half",
    "explain_two_thirds": "two thirds",
    "explain_fraction": "{num}/{den}",
    "explain_base_eligible": "the {n} eligible",
    "explain_base_present": "the {n} present",
    "explain_base_cast": "the {n} votes cast",
    "source_law_art_22": "Organic Law of Village Committees, art. 22",
    "source_law_art_26": "Organic Law of Village Committees, art. 26",
    "source_meeting": "set for this meeting",
    "profile_villagers_assembly": "Villagers' assembly",
    "profile_representatives_meeting": "Villagers' representatives meeting",
    "profile_simple_majority": "Simple majority of votes cast",
    "profile_two_thirds": "Two-thirds majority of votes cast",
    "profile_custom": "Custom rule",
}

_BRACES = re.compile(r"\{(\w+)\}")


def fill(template: object, **values: object) -> str:
    """``{name}`` placeholders filled from ``values`` (unknown ones are left as they are)."""
    return _BRACES.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), str(template)
    )


def _say(gettext: Gettext, key: str, **values: object) -> str:
    # no values through gettext itself: the templates' gettext formats with %
    return fill(gettext(MESSAGES[key]), **values)


def fraction(num: int, den: int, gettext: Gettext) -> str:
    common = gcd(num, den) or 1
    num, den = num // common, den // common
    if (num, den) == (1, 2):
        return _say(gettext, "explain_half")
    if (num, den) == (2, 3):
        return _say(gettext, "explain_two_thirds")
    return _say(gettext, "explain_fraction", num=num, den=den)


def threshold(part: dict, gettext: Gettext) -> str:
    """ "more than half of the 6 present": a quorum's or a majority's part in words."""
    return _say(
        gettext,
        "explain_threshold",
        cmp=_say(gettext, "explain_more_than" if part["strict"] else "explain_at_least"),
        frac=fraction(part["num"], part["den"], gettext),
        base=_say(gettext, f"explain_base_{part['base']}", n=part["of"]),
    )


def sentences(
    explanation: dict, gettext: Gettext, text: Callable[[str], str] = str, *, rule: bool = True
) -> list[str]:
    """The verdict with its threshold, the quorum, the rule and its source: one line each.

    ``rule=False`` leaves the rule's line out (the minutes show the rule just above).
    """
    quorum, majority = explanation.get("quorum"), explanation["majority"]
    out = []
    if explanation["outcome"] == "no_quorum" and quorum:
        out.append(
            _say(
                gettext,
                "explain_no_quorum",
                present=quorum["present"],
                rule=threshold(quorum, gettext),
                needed=quorum["needed"],
            )
        )
        households = quorum.get("households")
        if households:
            out.append(
                _say(
                    gettext,
                    "explain_no_quorum_households",
                    got=households["present"],
                    total=households["total"],
                    needed=households["needed"],
                )
            )
    else:
        out.append(
            _say(
                gettext,
                "explain_passed" if explanation["outcome"] == "passed" else "explain_not_passed",
                option=text(majority["option"]),
                got=majority["got"],
                rule=threshold(majority, gettext),
                needed=majority["needed"],
            )
        )
        if quorum is None:
            present = explanation.get("present", "—")
            out.append(_say(gettext, "explain_no_quorum_needed", present=present))
        elif quorum["present"] >= quorum["needed"] or not quorum.get("households"):
            out.append(
                _say(
                    gettext,
                    "explain_quorum_met",
                    present=quorum["present"],
                    rule=threshold(quorum, gettext),
                    needed=quorum["needed"],
                )
            )
        else:
            households = quorum["households"]
            out.append(
                _say(
                    gettext,
                    "explain_quorum_households",
                    got=households["present"],
                    total=households["total"],
                    needed=households["needed"],
                )
            )
    if not rule:
        return out
    out.append(
        _say(
            gettext,
            "explain_rule",
            rule=_say(gettext, f"profile_{explanation['rule']}"),
            source=_say(gettext, f"source_{explanation['source']}"),
        )
    )
    return out
