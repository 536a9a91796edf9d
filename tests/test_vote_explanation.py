"""A result explains itself (issue 14, wall 4): the rule and its source, the quorum and
the threshold (needed vs got), and why it passed or failed — with the tally's numbers.
"""

from __future__ import annotations

import re

import pytest

from server.services import rules, vote_words
from server.settings import REPO_ROOT

from .support.api import add_member, auth, join_by_invite, start_meeting


async def _vote(client, clerk_token, room_of, *, roll, online, choices, rule, households=None):
    """``roll`` members on the roll, the first ``online`` of them joined on their phones,
    who vote ``choices`` in order; the vote under ``rule``, closed: (meeting, result)."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    phones = []
    for i in range(roll):
        fields = {"household": households[i]} if households else {}
        added = await add_member(client, clerk_token, f"村民{i}", **fields)
        if i < online:
            person, _ = await room.join((await join_by_invite(client, added["invite"]))["token"])
            phones.append(person)
    opened = await host.call("vote:open", {"question": "修村道吗？", "rule": rule})
    assert opened["ok"], opened
    vote_id = opened["vote_id"]
    announced = await phones[0].wait_for("vote:opened")
    assert (announced["present"], announced["eligible"]) == (online, roll)
    for phone, choice in zip(phones, choices, strict=False):
        assert (await phone.call("vote:cast", {"vote_id": vote_id, "choice": choice}))["ok"]
    result = await host.call("vote:close", {"vote_id": vote_id})
    assert result["ok"], result
    return meeting, result


def _matches_the_tally(result: dict) -> dict:
    """The explanation's numbers are the result's own, and its verdict is the result's."""
    e = result["explanation"]
    rule = rules.rule_from_dict(result["rule"])
    assert e["rule"] == rule.profile
    assert (e["present"], e["eligible"]) == (result["present"], result["eligible"])
    bases = {"eligible": result["eligible"], "present": result["present"], "cast": result["cast"]}
    m = e["majority"]
    assert m["option"] == "同意" and m["got"] == result["tally"]["同意"]
    assert (m["base"], m["of"]) == (rule.majority.of, bases[rule.majority.of])
    assert (m["num"], m["den"], m["strict"]) == (
        rule.majority.num,
        rule.majority.den,
        rule.majority.strict,
    )
    # needed is the least whole number the rule accepts
    assert rule.majority.met(m["needed"], {**bases, m["base"]: m["of"]})
    assert m["needed"] == 0 or not rule.majority.met(m["needed"] - 1, bases)
    assert m["met"] == (m["got"] >= m["needed"])
    if rule.quorum is None:
        assert e["quorum"] is None
    else:
        q = e["quorum"]
        assert (q["present"], q["of"], q["base"]) == (
            result["present"],
            result["eligible"],
            "eligible",
        )
        assert rule.quorum.met(q["needed"], bases) and not rule.quorum.met(q["needed"] - 1, bases)
        assert q["met"] == result["quorum_met"]
    outcome = (
        "no_quorum" if not result["quorum_met"] else "passed" if result["passed"] else "not_passed"
    )
    assert e["outcome"] == outcome
    return e


def _zh(explanation: dict) -> list[str]:
    from server.i18n import Catalogs

    zh = Catalogs(REPO_ROOT / "web" / "translations").gettext_for("zh_CN")
    return vote_words.sentences(explanation, zh)


async def test_the_issues_case_4_of_6_present_pass_under_the_villagers_assembly_rule(
    client, clerk_token, room_of
):
    meeting, result = await _vote(
        client,
        clerk_token,
        room_of,
        roll=6,
        online=6,
        choices=["同意"] * 4 + ["反对"] * 2,
        rule="villagers_assembly",
    )
    e = _matches_the_tally(result)
    assert e["source"] == "law_art_22" and e["outcome"] == "passed"
    assert e["quorum"] == {
        "needed": 4,
        "of": 6,
        "base": "eligible",
        "num": 1,
        "den": 2,
        "strict": True,
        "present": 6,
        "met": True,
        "households": None,
    }
    assert {k: e["majority"][k] for k in ("needed", "got", "of", "base", "strict")} == {
        "needed": 4,
        "got": 4,
        "of": 6,
        "base": "present",
        "strict": True,
    }
    assert _zh(e) == [
        "通过：同意 4 票，需要超过到会 6 人的半数，即至少 4 票。",
        "达到法定人数：到会 6 人，需要超过应投 6 人的半数，即至少 4 人。",
        "表决规则：村民会议（《中华人民共和国村民委员会组织法》第二十二条）",
    ]
    # the same result, read back, carries the same explanation
    listed = await (
        await client.get(f"/api/meetings/{meeting['id']}/votes", headers=auth(clerk_token))
    ).json()
    assert listed["votes"][0]["result"]["explanation"] == e

    # the minutes say it in words, in Markdown and HTML, in Chinese and English
    mid = meeting["id"]
    md = await (
        await client.get(f"/api/meetings/{mid}/minutes.md", headers=auth(clerk_token))
    ).text()
    assert "  - 通过：同意 4 票，需要超过到会 6 人的半数，即至少 4 票。\n" in md
    assert "  - 达到法定人数：到会 6 人，需要超过应投 6 人的半数，即至少 4 人。\n" in md
    html = await (
        await client.get(f"/api/meetings/{mid}/minutes.html", headers=auth(clerk_token))
    ).text()
    assert "<li>通过：同意 4 票，需要超过到会 6 人的半数，即至少 4 票。</li>" in html
    english = await (
        await client.get(
            f"/api/meetings/{mid}/minutes.md",
            headers={**auth(clerk_token), "Accept-Language": "en"},
        )
    ).text()
    assert (
        "Passed: 4 for “同意”; it needed more than half of the 6 present, that is at least 4."
        in english
    )


async def test_no_quorum_says_how_many_were_needed(client, clerk_token, room_of):
    _, result = await _vote(
        client,
        clerk_token,
        room_of,
        roll=7,
        online=3,
        choices=["同意"] * 3,
        rule="villagers_assembly",
        households=["一户", "二户", "三户", "四户", "五户", "六户", "七户"],
    )
    e = _matches_the_tally(result)
    assert e["outcome"] == "no_quorum" and result["passed"] is False
    assert (e["quorum"]["needed"], e["quorum"]["present"]) == (4, 3)
    # art. 22's alternative: 3 of 7 households, at least 5 (two thirds) needed
    assert e["quorum"]["households"] == {"needed": 5, "present": 3, "total": 7, "met": False}
    assert _zh(e)[:2] == [
        "表决无效，未达到法定人数：到会 3 人，需要超过应投 7 人的半数，即至少 4 人。",
        "按户计也不够：7 户中只有 3 户的代表到会，需要三分之二以上，即至少 5 户。",
    ]


async def test_two_thirds_of_the_votes_cast_not_reached(client, clerk_token, room_of):
    _, result = await _vote(
        client,
        clerk_token,
        room_of,
        roll=5,
        online=5,
        choices=["同意"] * 3 + ["反对"] * 2,
        rule="two_thirds",
    )
    e = _matches_the_tally(result)
    assert e["outcome"] == "not_passed" and e["source"] == "meeting"
    m = e["majority"]
    assert (m["needed"], m["got"], m["of"], m["base"], m["strict"]) == (4, 3, 5, "cast", False)
    assert _zh(e) == [
        "未通过：同意 3 票，需要达到所投 5 票的三分之二，即至少 4 票。",
        "本规则不设法定人数；到会 5 人。",
        "表决规则：投票三分之二以上（本次会议设定）",
    ]


async def test_a_custom_rule_is_explained_with_its_own_fraction(client, clerk_token, room_of):
    custom = {
        "profile": "custom",
        "quorum": {"num": 3, "den": 5, "of": "eligible", "strict": False},
        "majority": {"num": 3, "den": 4, "of": "eligible", "strict": True},
    }
    _, result = await _vote(
        client, clerk_token, room_of, roll=5, online=4, choices=["同意"] * 4, rule=custom
    )
    e = _matches_the_tally(result)
    assert e["outcome"] == "passed" and e["source"] == "meeting" and e["rule"] == "custom"
    assert (e["quorum"]["needed"], e["quorum"]["present"]) == (3, 4)  # 3/5 of 5: at least 3
    assert (e["majority"]["needed"], e["majority"]["got"]) == (4, 4)  # more than 3/4 of 5
    assert _zh(e) == [
        "通过：同意 4 票，需要超过应投 5 人的4分之3，即至少 4 票。",
        "达到法定人数：到会 4 人，需要达到应投 5 人的5分之3，即至少 3 人。",
        "表决规则：自定义规则（本次会议设定）",
    ]


@pytest.mark.parametrize("strict", [True, False])
def test_needed_is_the_least_whole_number_that_meets_the_threshold(strict):
    for den in range(1, 8):
        for num in range(den + 1):
            threshold = rules.Threshold(num, den, "cast", strict)
            for base in range(40):
                needed = threshold.needed(base)
                assert threshold.met(needed, {"cast": base}), (num, den, base)
                assert needed == 0 or not threshold.met(needed - 1, {"cast": base})


def test_households_carry_the_quorum_and_the_words_say_so():
    rule = rules.rule_for(rules.VILLAGERS_ASSEMBLY)
    counts = {"yes": 20, "cast": 30, "present": 30, "eligible": 100}
    e = rules.explain(rule, option="同意", households_present=20, households=30, **counts)
    decision = rules.decide(rule, households_present=20, households=30, **counts)
    assert decision.quorum_met and e["quorum"]["met"] and e["outcome"] == "passed"
    assert e["quorum"]["households"] == {"needed": 20, "present": 20, "total": 30, "met": True}
    assert (
        _zh(e)[1]
        == "按户计达到法定人数：30 户中有 20 户的代表到会，需要三分之二以上的户，即至少 20 户。"
    )


def test_a_result_stored_before_explanations_is_explained_from_its_numbers():
    old = {
        "tally": {"同意": 2, "反对": 1},
        "cast": 3,
        "present": 3,
        "eligible": 3,
        "quorum_met": True,
        "passed": True,
        "rule": rules.rule_for(rules.SIMPLE_MAJORITY).as_dict(),
    }
    e = rules.stored_explanation(old)
    assert e is not None and e["outcome"] == "passed" and e["majority"]["needed"] == 2
    # a verdict the numbers alone cannot give (the households decided it): no words
    assembly = {**old, "rule": rules.rule_for(rules.VILLAGERS_ASSEMBLY).as_dict(), "eligible": 10}
    assert rules.stored_explanation(assembly) is None


def test_the_pages_and_the_minutes_use_the_same_message_ids():
    """The browser's vote-i18n blob (_room.html) lists vote_words.MESSAGES, key for key."""
    template = (REPO_ROOT / "web" / "templates" / "_room.html").read_text()
    macro = template.split("{% macro vote_words() -%}")[1].split("{%- endmacro %}")[0]
    pairs = dict(re.findall(r'^\s*"(\w+)": _\("(.*)"\),?$', macro, re.MULTILINE))
    assert {k: pairs.get(k) for k in vote_words.MESSAGES} == vote_words.MESSAGES


async def test_a_phone_joining_an_open_vote_is_told_who_is_present(client, clerk_token, room_of):
    """A phone that joins while a vote is open gets its ``present`` in the join's votes,
    counted as ``vote:opened`` counts (the late phone included), so its card says 到会 N 人."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    tokens = []
    for i in range(3):
        added = await add_member(client, clerk_token, f"村民{i}")
        tokens.append((await join_by_invite(client, added["invite"]))["token"])
    phones = [(await room.join(token))[0] for token in tokens[:2]]
    opened = await host.call("vote:open", {"question": "修村道吗？", "rule": "villagers_assembly"})
    announced = await phones[0].wait_for("vote:opened")
    assert (announced["present"], announced["eligible"]) == (2, 3)

    _, late = await room.join(tokens[2])
    (listed,) = [v for v in late["state"]["votes"] if v["vote_id"] == opened["vote_id"]]
    assert (listed["status"], listed["present"], listed["eligible"]) == ("open", 3, 3)
    # a closed vote's number is its result's, not a live count
    await host.call("vote:close", {"vote_id": opened["vote_id"]})
    _, again = await room.join(tokens[2])
    assert "present" not in again["state"]["votes"][0]
