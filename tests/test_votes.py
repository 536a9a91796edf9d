"""Votes over real socket.io clients: one ballot each, exact tallies, closed means closed."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from server.keys import DATABASE
from server.services import rules

from .support.api import add_member, auth, join_by_invite, member, start_meeting
from .support.realtime import Room


async def voters(client, clerk_token, room, n, **member_fields):
    people = []
    for i in range(n):
        member_id, token = await member(client, clerk_token, f"村民{i}")
        person, _ = await room.join(token)
        people.append((member_id, person))
    return people


async def test_open_cast_close_with_exact_tally_and_receipts(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token, agenda=[{"title": "修路"}])
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    people = await voters(client, clerk_token, room, 5)
    item_id = meeting["agenda"][0]["id"]

    opened = await host.call(
        "vote:open",
        {
            "item_id": item_id,
            "question": "同意修路吗？",
            "options": ["同意", "反对", "弃权"],
            "secret": False,
        },
    )
    assert opened["ok"], opened
    vote_id = opened["vote_id"]
    announced = await people[0][1].wait_for("vote:opened")
    assert announced["question"] == "同意修路吗？" and announced["eligible"] == 5
    assert announced["present"] == 5  # announced before the vote: 5 members online

    choices = ["同意", "同意", "同意", "反对", "弃权"]
    acks = [
        await p.call("vote:cast", {"vote_id": vote_id, "choice": c})
        for (_, p), c in zip(people, choices, strict=True)
    ]
    assert all(a["ok"] and len(a["receipt"]) == 10 for a in acks), acks
    progress = await host.wait_for("vote:progress", lambda d: d["cast"] == 5)
    assert progress == {"vote_id": vote_id, "cast": 5}

    again = await people[0][1].call("vote:cast", {"vote_id": vote_id, "choice": "反对"})
    assert again["error"]["code"] == "already_voted"
    wrong = await host.call("vote:cast", {"vote_id": vote_id, "choice": "同意"})
    assert wrong["error"]["code"] == "forbidden"

    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["ok"] and closed["tally"] == {"同意": 3, "反对": 1, "弃权": 1}
    assert closed["cast"] == 5 and closed["eligible"] == 5 and closed["present"] >= 5
    assert closed["passed"] is True  # general meeting: simple majority of votes cast
    broadcast = await people[1][1].wait_for("vote:closed")
    assert broadcast["tally"] == closed["tally"] and "seq" in broadcast
    assert (await host.call("vote:close", {"vote_id": vote_id}))["tally"] == closed["tally"]
    late = await people[0][1].call("vote:cast", {"vote_id": vote_id, "choice": "同意"})
    assert late["error"]["code"] in ("vote_closed", "already_voted")

    listed = await (
        await client.get(
            f"/api/meetings/{meeting['id']}/votes/{vote_id}/receipts", headers=auth(clerk_token)
        )
    ).json()
    assert sorted(r["receipt"] for r in listed["receipts"]) == sorted(a["receipt"] for a in acks)
    mine = {r["receipt"]: r["choice"] for r in listed["receipts"]}
    assert [mine[a["receipt"]] for a in acks] == choices

    # a reload does not offer a second ballot: the join says who already voted
    _, ack = await room.join((await member(client, clerk_token, "后来者"))[1])
    assert ack["state"]["votes"][0]["status"] == "closed"


async def test_bad_ballots_are_refused_with_their_codes(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token, allow_guests=True)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((member_id, person),) = await voters(client, clerk_token, room, 1)
    guest_token = (
        await (
            await client.post("/api/join", json={"meeting_code": meeting["code"], "name": "客"})
        ).json()
    )["token"]
    client.session.cookie_jar.clear()
    guest, _ = await room.join(guest_token)
    vote_id = (await host.call("vote:open", {"question": "选哪个?", "options": ["甲", "乙"]}))[
        "vote_id"
    ]

    newcomer_id, newcomer_token = await member(client, clerk_token, "新来的")
    newcomer, _ = await room.join(newcomer_token)
    for who, payload, code in (
        (person, {"vote_id": vote_id, "choice": "丙"}, "invalid_option"),
        (person, {"vote_id": 99999, "choice": "甲"}, "not_found"),
        (person, {"vote_id": "1", "choice": "甲"}, "bad_request"),
        (guest, {"vote_id": vote_id, "choice": "甲"}, "forbidden"),
        (newcomer, {"vote_id": vote_id, "choice": "甲"}, "not_eligible"),  # frozen at open
        (host, {"vote_id": vote_id}, "forbidden"),
    ):
        answer = await who.call("vote:cast", payload)
        assert answer["ok"] is False and answer["error"]["code"] == code, (payload, answer)
    for payload in (
        {"question": ""},
        {"question": "q", "options": ["只有一个"]},
        {"question": "q", "options": ["a", "a"]},
        {"question": "q", "rule": "bogus"},
        {"question": "q", "secret": "yes"},
        {"question": "q", "item_id": 424242},
    ):
        answer = await host.call("vote:open", payload)
        assert answer["error"]["code"] == "bad_request", (payload, answer)
    assert (await person.call("vote:open", {"question": "q"}))["error"]["code"] == "forbidden"
    assert (await person.call("vote:close", {"vote_id": vote_id}))["error"]["code"] == "forbidden"
    # every attempt, refused or not, is on the audit list (member and outcome, no choice)
    async with client.app[DATABASE].session() as db:
        outcomes = (
            await db.execute(
                text("SELECT participant_id, outcome FROM ballot_attempts WHERE vote_id = :v"),
                {"v": vote_id},
            )
        ).all()
    assert (member_id, "invalid_option") in outcomes and (newcomer_id, "not_eligible") in outcomes


async def test_20_parallel_casts_by_one_member_over_3_connections_make_1_ballot(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    _, token = await member(client, clerk_token, "手快的人")
    phones = [(await room.join(token))[0] for _ in range(3)]
    vote_id = (await host.call("vote:open", {"question": "同意吗?"}))["vote_id"]
    answers = await asyncio.gather(
        *(
            phones[i % 3].call("vote:cast", {"vote_id": vote_id, "choice": "同意"})
            for i in range(20)
        )
    )
    assert sum(a["ok"] for a in answers) == 1
    # 3 joins + 20 casts pass the member's event burst (SOCKET_EVENT_BURST): the last few
    # may be refused before they reach the vote
    codes = [a["error"]["code"] for a in answers if not a["ok"]]
    assert set(codes) <= {"already_voted", "rate_limited"} and codes.count("rate_limited") <= 3
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["cast"] == 1 and closed["tally"]["同意"] == 1


async def test_50_casts_racing_50_closes_agree_on_one_tally(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    others = [(await room.join(clerk_token))[0] for _ in range(4)]
    people = await voters(client, clerk_token, room, 50)
    vote_id = (await host.call("vote:open", {"question": "同意吗?"}))["vote_id"]
    closers = [host, *others]
    results = await asyncio.gather(
        *(p.call("vote:cast", {"vote_id": vote_id, "choice": "同意"}) for _, p in people),
        *(closers[i % 5].call("vote:close", {"vote_id": vote_id}) for i in range(50)),
    )
    casts, closes = results[:50], results[50:]
    accepted = sum(1 for c in casts if c["ok"])
    assert {c["error"]["code"] for c in casts if not c["ok"]} <= {"vote_closed"}
    assert all(c["ok"] for c in closes)
    assert {c["cast"] for c in closes} == {accepted}
    assert {c["tally"]["同意"] for c in closes} == {accepted}
    async with client.app[DATABASE].session() as db:
        rows = (
            await db.execute(
                text("SELECT count(*) FROM ballots WHERE vote_id = :v"), {"v": vote_id}
            )
        ).scalar_one()
    assert rows == accepted


async def test_500_concurrent_voters_make_exactly_500_ballots(client, clerk_token):
    await _many_voters(client, clerk_token, 500)


@pytest.fixture
async def pg_client(aiohttp_client, settings):
    """The app on a PostgreSQL database of its own, with a logged-in clerk."""
    from dataclasses import replace

    from server.app import create_app
    from server.services import accounts

    from .support.api import PASSWORD
    from .support.databases import fresh_database

    async with fresh_database("cunhui_votes") as url:
        client = await aiohttp_client(create_app(replace(settings, database_url=url)))
        async with client.app[DATABASE].session() as db:
            await accounts.create_user(db, "clerk", PASSWORD)
        login = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        client.session.cookie_jar.clear()
        yield client, (await login.json())["token"]
        await client.close()


async def test_500_concurrent_voters_make_exactly_500_ballots_on_postgres(pg_client):
    client, token = pg_client
    await _many_voters(client, token, 500)


async def _many_voters(client, clerk_token, n: int) -> None:
    meeting = await start_meeting(client, clerk_token)
    room = Room(client, meeting)
    try:
        await _vote_with(room, client, clerk_token, meeting, n)
    finally:
        await room.close()


async def _vote_with(room, client, clerk_token, meeting, n: int) -> None:
    host, _ = await room.join(clerk_token)
    tokens = [await member(client, clerk_token, f"村民{i}") for i in range(n)]
    people = []
    for start in range(0, n, 50):  # connect in waves, as a village would
        batch = await asyncio.gather(*(room.join(t) for _, t in tokens[start : start + 50]))
        people.extend(p for p, _ in batch)
    vote_id = (await host.call("vote:open", {"question": "同意吗?"}))["vote_id"]
    options = ["同意", "反对", "弃权"]
    started = asyncio.get_running_loop().time()
    answers = await asyncio.gather(
        *(  # all at once: the last in line waits for the rest
            p.sio.call("vote:cast", {"vote_id": vote_id, "choice": options[i % 3]}, timeout=60)
            for i, p in enumerate(people)
        )
    )
    print(f"{n} ballots in {asyncio.get_running_loop().time() - started:.2f} s")
    failed = [a for a in answers if not a["ok"]]
    assert not failed, failed[:3]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    expected = {o: sum(1 for i in range(n) if i % 3 == k) for k, o in enumerate(options)}
    assert closed["tally"] == expected and closed["cast"] == n and closed["eligible"] == n
    async with client.app[DATABASE].session() as db:
        rows = (
            await db.execute(
                text("SELECT count(*) FROM ballots WHERE vote_id = :v"), {"v": vote_id}
            )
        ).scalar_one()
        voted = (
            await db.execute(
                text("SELECT count(*) FROM vote_participation WHERE vote_id = :v"), {"v": vote_id}
            )
        ).scalar_one()
    assert rows == voted == n


async def test_a_secret_ballot_pairs_no_member_with_a_choice(client, clerk_token, room_of, caplog):
    caplog.set_level(logging.DEBUG)
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    people = await voters(client, clerk_token, room, 4)
    await member(client, clerk_token, "不在线的村民")  # SECRET_VOTE_MIN_ELECTORATE: 5 on the roll
    watcher, _ = await room.join(clerk_token)
    vote_id = (
        await host.call(
            "vote:open", {"question": "选主任", "options": ["老张", "老李"], "secret": True}
        )
    )["vote_id"]
    choices = ["老张", "老李", "老张", "老张"]
    acks = [
        await p.call("vote:cast", {"vote_id": vote_id, "choice": c})
        for (_, p), c in zip(people, choices, strict=True)
    ]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["tally"] == {"老张": 3, "老李": 1}

    member_ids = [pid for pid, _ in people]
    # nothing sent, stored or logged pairs a member with a choice
    seen = [str(data) for _, data in watcher.events] + [str(a) for a in acks] + [str(closed)]
    timeline = await (
        await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
    ).json()
    seen += [str(e) for e in timeline["events"]]
    receipts = await (
        await client.get(
            f"/api/meetings/{meeting['id']}/votes/{vote_id}/receipts", headers=auth(clerk_token)
        )
    ).text()
    seen.append(receipts)
    seen += [r.getMessage() for r in caplog.records]
    for line in seen:
        for pid in member_ids:
            if f"'{pid}'" in line or f'"{pid}"' in line:
                assert "老张" not in line and "老李" not in line, line
    async with client.app[DATABASE].session() as db:
        linked = (
            await db.execute(
                text("SELECT count(*) FROM ballots WHERE vote_id = :v AND member_id IS NOT NULL"),
                {"v": vote_id},
            )
        ).scalar_one()
    assert linked == 0


async def test_hall_and_remote_add_up_and_a_remote_voter_is_not_counted_twice(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token, kind="representatives_meeting")
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    reps = [
        await add_member(client, clerk_token, f"代表{i}", representative=True) for i in range(6)
    ]
    remote = []
    for rep in reps[:2]:
        token = (await join_by_invite(client, rep["invite"]))["token"]
        remote.append((await room.join(token))[0])
    await client.post("/api/members", json={"name": "普通村民"}, headers=auth(clerk_token))
    # 3 people in the hall: a headcount for the minutes; the hall's voters are ticked below
    assert (await host.call("attendance:hall", {"in_hall": 3}))["ok"]
    vote_id = (await host.call("vote:open", {"question": "通过预算?"}))["vote_id"]
    assert (await remote[0].wait_for("vote:opened"))["eligible"] == 6  # representatives only

    for person in remote:
        assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": "同意"}))["ok"]
    untick = await host.call(
        "vote:roll", {"vote_id": vote_id, "member_id": reps[3]["id"], "choice": "同意"}
    )
    assert untick["error"]["code"] == "bad_request"  # not ticked present in the hall
    for rep in (reps[0], reps[2], reps[3]):  # 代表0 voted on the phone, then walked into the hall
        assert (await host.call("attendance:hall", {"member_id": rep["id"], "present": True}))["ok"]
    twice = await host.call(
        "vote:roll", {"vote_id": vote_id, "member_id": reps[0]["id"], "choice": "反对"}
    )
    assert twice["error"]["code"] == "already_voted"
    assert (
        await host.call(
            "vote:roll", {"vote_id": vote_id, "member_id": reps[2]["id"], "choice": "同意"}
        )
    )["ok"]
    # the hall's 3 voters include 代表0, who voted on the phone; 代表2 was roll-called
    too_many = await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 1, "反对": 1}})
    assert too_many["error"]["code"] == "bad_request"
    assert too_many["error"]["message"] == (
        "the hall has 2 checked-in members who have not voted another way; "
        "the counts add up to 3 (2 by show of hands + 1 by roll call)"
    )
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"反对": 1}}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["sources"]["remote"]["同意"] == 2
    assert closed["sources"]["hall_roll_call"]["同意"] == 1
    assert closed["sources"]["hall_show_of_hands"] == {"同意": 0, "反对": 1, "弃权": 0}
    assert closed["tally"] == {"同意": 3, "反对": 1, "弃权": 0}
    # 1 online (the other is in the hall now) + 3 in the hall = 4 present, 4 cast:
    # 4 of 6 is two thirds; 3 of 4 agree
    assert (closed["cast"], closed["present"]) == (4, 4)
    assert closed["quorum_met"] and closed["passed"]


async def _one_member_in_the_hall_voted_by_phone(client, clerk_token, room_of, **hall):
    """One eligible member, on the phone and ticked present in the hall."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((member_id, person),) = await voters(client, clerk_token, room, 1)
    ticked = {"member_id": int(member_id[1:]), "present": True}
    assert (await host.call("attendance:hall", {**ticked, **hall}))["ok"]
    vote_id = (await host.call("vote:open", {"question": "修路?"}))["vote_id"]
    assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": "同意"}))["ok"]
    return host, vote_id


@pytest.mark.parametrize("hall", [{"in_hall": 1}, {}], ids=["hall count 1", "ticked only"])
async def test_a_phone_voter_in_the_hall_is_not_counted_again_by_hands(
    client, clerk_token, room_of, hall
):
    """Issue 14's double count: hands {"同意": 1} would make cast 2, present 2 of 1."""
    host, vote_id = await _one_member_in_the_hall_voted_by_phone(
        client, clerk_token, room_of, **hall
    )
    again = await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 1}})
    assert again["error"]["code"] == "bad_request"
    assert again["error"]["message"] == (
        "the hall has 0 checked-in members who have not voted another way; "
        "the counts add up to 1 (1 by show of hands + 0 by roll call)"
    )
    assert (again["error"]["hall_voters"], again["error"]["counted"]) == (0, 1)
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 0}}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["tally"] == {"同意": 1, "反对": 0, "弃权": 0}
    assert (closed["cast"], closed["present"], closed["eligible"]) == (1, 1, 1)
    assert closed["passed"] is True


async def test_a_hall_voter_counted_by_hands_cannot_vote_again_by_phone(
    client, clerk_token, room_of
):
    """The double count the other way round: the hall's hands took the one checked-in
    member first; their phone ballot after that is refused, and the result stays 1 of 1."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((member_id, person),) = await voters(client, clerk_token, room, 1)
    ticked = {"member_id": int(member_id[1:]), "present": True}
    assert (await host.call("attendance:hall", ticked))["ok"]
    vote_id = (await host.call("vote:open", {"question": "修路?"}))["vote_id"]
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 1}}))["ok"]

    again = await person.call("vote:cast", {"vote_id": vote_id, "choice": "反对"})
    assert again["error"]["code"] == "already_voted"
    assert "counted all 1 checked-in members" in again["error"]["message"]
    assert (again["error"]["hall_voters"], again["error"]["counted"]) == (1, 1)
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["tally"] == {"同意": 1, "反对": 0, "弃权": 0}
    assert (closed["cast"], closed["present"], closed["eligible"]) == (1, 1, 1)


async def test_a_hall_voter_not_taken_by_the_hands_may_still_vote_by_phone(
    client, clerk_token, room_of
):
    """Two checked in, one hand counted: one of them did not raise it, so a phone ballot
    from either is accepted (2 cast of 2), and then the hands are full."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    people = await voters(client, clerk_token, room, 2)
    for member_id, _ in people:
        ticked = {"member_id": int(member_id[1:]), "present": True}
        assert (await host.call("attendance:hall", ticked))["ok"]
    vote_id = (await host.call("vote:open", {"question": "修路?"}))["vote_id"]
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 1}}))["ok"]
    (_, first), (_, second) = people
    assert (await first.call("vote:cast", {"vote_id": vote_id, "choice": "反对"}))["ok"]
    refused = await second.call("vote:cast", {"vote_id": vote_id, "choice": "反对"})
    assert refused["error"]["code"] == "already_voted"
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert (closed["cast"], closed["present"], closed["eligible"]) == (2, 2, 2)


async def test_hands_beyond_the_hall_voters_are_refused_and_present_stays_within_eligible(
    client, clerk_token, room_of
):
    """35 people in the hall, 3 members on the roll: the hall's voters are the members
    checked in there, never the headcount."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((_, person),) = await voters(client, clerk_token, room, 1)
    for i in range(2):
        hall_member, _ = await member(client, clerk_token, f"会场村民{i}")
        ticked = {"member_id": int(hall_member[1:]), "present": True}
        assert (await host.call("attendance:hall", ticked))["ok"]
    assert (await host.call("attendance:hall", {"in_hall": 35}))["ok"]
    opening = {"question": "修路?", "rule": "villagers_assembly"}
    vote_id = (await host.call("vote:open", opening))["vote_id"]
    opened = await person.wait_for("vote:opened")
    assert (opened["eligible"], opened["present"]) == (3, 3)  # not 36
    assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": "反对"}))["ok"]
    too_many = await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 3}})
    assert too_many["error"]["code"] == "bad_request"
    assert "the hall has 2 checked-in members" in too_many["error"]["message"]
    assert "the counts add up to 3" in too_many["error"]["message"]
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 2}}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    # the numbers the result explains itself with are the tally's
    assert closed["tally"] == {"同意": 2, "反对": 1, "弃权": 0}
    assert closed["cast"] == sum(closed["tally"].values()) == 3
    assert closed["present"] == closed["eligible"] == 3
    decision = rules.decide(
        rules.rule_from_dict(closed["rule"]),
        yes=closed["tally"]["同意"],
        cast=closed["cast"],
        present=closed["present"],
        eligible=closed["eligible"],
    )
    assert (closed["quorum_met"], closed["passed"]) == (decision.quorum_met, decision.passed)
    assert closed["passed"] is True  # 2 of 3 present
    # ... and its explanation says so with the same numbers (tests/test_vote_explanation.py)
    majority = closed["explanation"]["majority"]
    assert (majority["got"], majority["of"], majority["needed"]) == (2, closed["present"], 2)
    assert closed["explanation"]["quorum"]["present"] == closed["present"]
    assert closed["explanation"]["outcome"] == "passed"


def test_rule_profiles_decide_by_the_law():
    assembly = rules.rule_for(rules.VILLAGERS_ASSEMBLY)
    # 100 adults: 50 present is not "more than half"; 51 is
    assert not rules.decide(assembly, yes=40, cast=50, present=50, eligible=100).quorum_met
    assert rules.decide(assembly, yes=26, cast=51, present=51, eligible=100).passed
    assert not rules.decide(assembly, yes=25, cast=51, present=51, eligible=100).passed
    # ... or representatives of two thirds of the households
    by_households = rules.decide(
        assembly, yes=20, cast=30, present=30, eligible=100, households_present=20, households=30
    )
    assert by_households.quorum_met and by_households.passed
    reps = rules.rule_for(rules.REPRESENTATIVES)
    assert rules.decide(
        reps, yes=11, cast=20, present=20, eligible=30
    ).passed  # 2/3 present exactly
    assert not rules.decide(reps, yes=19, cast=19, present=19, eligible=30).quorum_met
    two_thirds = rules.rule_for(rules.TWO_THIRDS)
    assert rules.decide(two_thirds, yes=20, cast=30, present=30, eligible=30).passed
    assert not rules.decide(two_thirds, yes=19, cast=30, present=30, eligible=30).passed
    custom = rules.parse_rule(
        {"profile": "custom", "majority": {"num": 3, "den": 4, "of": "cast"}}, "general"
    )
    assert rules.decide(custom, yes=3, cast=4, present=4, eligible=4).passed is False  # strict


async def test_ending_the_meeting_closes_its_open_votes(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((_, person),) = await voters(client, clerk_token, room, 1)
    vote_id = (await host.call("vote:open", {"question": "同意吗?"}))["vote_id"]
    assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": "反对"}))["ok"]
    await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))
    closed = await person.wait_for("vote:closed")
    assert closed["vote_id"] == vote_id and closed["tally"]["反对"] == 1 and not closed["passed"]


async def test_a_registered_proxy_votes_for_an_absent_member_once(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    absent = await (
        await client.post("/api/members", json={"name": "出远门的吴九"}, headers=auth(clerk_token))
    ).json()
    proxy_pid, proxy_token = await member(client, clerk_token, "郑十")
    other_pid, other_token = await member(client, clerk_token, "旁人")
    url = f"/api/meetings/{meeting['id']}/proxies"
    proxy_id = int(proxy_pid[1:])
    registered = await client.post(
        url, json={"member_id": absent["id"], "proxy_id": proxy_id}, headers=auth(clerk_token)
    )
    assert registered.status == 201, await registered.text()
    again = await client.post(
        url,
        json={"member_id": absent["id"], "proxy_id": int(other_pid[1:])},
        headers=auth(clerk_token),
    )
    assert again.status == 409
    assert (
        await client.post(
            url, json={"member_id": proxy_id, "proxy_id": proxy_id}, headers=auth(clerk_token)
        )
    ).status == 400
    listed = (await (await client.get(url, headers=auth(proxy_token))).json())["proxies"]
    assert listed == [
        {
            "member": {"id": absent["id"], "name": "出远门的吴九"},
            "proxy": {"id": proxy_id, "name": "郑十"},
        }
    ]

    proxy, ack = await room.join(proxy_token)
    assert ack["state"]["proxies_held"] == [
        {"id": absent["id"], "name": "出远门的吴九", "voted": []}
    ]
    other, _ = await room.join(other_token)
    vote_id = (await host.call("vote:open", {"question": "同意吗?"}))["vote_id"]
    own = await proxy.call("vote:cast", {"vote_id": vote_id, "choice": "同意"})
    held = await proxy.call(
        "vote:cast", {"vote_id": vote_id, "choice": "反对", "for_member_id": absent["id"]}
    )
    assert own["ok"] and held["ok"]
    twice = await proxy.call(
        "vote:cast", {"vote_id": vote_id, "choice": "同意", "for_member_id": absent["id"]}
    )
    assert twice["error"]["code"] == "already_voted"
    stranger = await other.call(
        "vote:cast", {"vote_id": vote_id, "choice": "同意", "for_member_id": absent["id"]}
    )
    assert stranger["error"]["code"] == "forbidden"
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert closed["sources"]["proxy"]["反对"] == 1 and closed["sources"]["remote"]["同意"] == 1
    assert closed["cast"] == 2
    timeline = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
        ).json()
    )["events"]
    by_proxy = [e for e in timeline if e["type"] == "vote:ballot" and e.get("by_proxy")]
    assert by_proxy[0]["voter"] == f"m{absent['id']}" and by_proxy[0]["by_proxy"] == proxy_pid
    assert any(e["type"] == "proxy:registered" for e in timeline)


async def test_only_those_who_may_vote_count_as_present(client, clerk_token, room_of):
    """Ordinary villagers watching a representatives' meeting, or another village's members
    watching an open meeting, do not make up (or break) its quorum."""
    from .support.api import second_village_clerk

    meeting = await start_meeting(
        client, clerk_token, kind="representatives_meeting", allow_guests=True
    )
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    reps = []
    for i in range(3):
        added = await add_member(client, clerk_token, f"代表{i}", representative=True)
        token = (await join_by_invite(client, added["invite"]))["token"]
        reps.append((await room.join(token))[0])
    for _ in range(6):  # villagers watching
        await room.join((await member(client, clerk_token, "旁听"))[1])
    outsider_clerk = await second_village_clerk(client)
    outsider = await add_member(client, outsider_clerk, "外村人")
    token = (await join_by_invite(client, outsider["invite"]))["token"]
    await room.join(token)

    vote_id = (await host.call("vote:open", {"question": "通过吗?"}))["vote_id"]
    assert (await reps[0].wait_for("vote:opened"))["present"] == 3
    for person, choice in zip(reps, ("同意", "同意", "反对"), strict=True):
        assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": choice}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert (closed["eligible"], closed["present"]) == (3, 3)
    assert closed["passed"] is True  # art. 26: 2 of the 3 present agree


async def test_a_secret_vote_shows_no_source_small_enough_to_name_a_voter(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token, allow_guests=True)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    ((member_id, person),) = await voters(client, clerk_token, room, 1)
    for i in range(4):  # SECRET_VOTE_MIN_ELECTORATE: 5 on the roll (they vote in the hall)
        hall_member, _ = await member(client, clerk_token, f"会场村民{i}")
        ticked = {"member_id": int(hall_member[1:]), "present": True}
        assert (await host.call("attendance:hall", ticked))["ok"]
    assert (await host.call("attendance:hall", {"in_hall": 5, "member_id": int(member_id[1:])}))[
        "ok"
    ]
    vote_id = (
        await host.call("vote:open", {"question": "选谁?", "options": ["甲", "乙"], "secret": True})
    )["vote_id"]
    roll = await host.call(
        "vote:roll", {"vote_id": vote_id, "member_id": int(member_id[1:]), "choice": "甲"}
    )
    assert roll["error"]["code"] == "bad_request"  # a roll call is not secret
    assert (await person.call("vote:cast", {"vote_id": vote_id, "choice": "乙"}))["ok"]
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"甲": 3}}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    # one ballot by phone beside three hands: shown apart, it would be that member's choice
    assert closed["sources"] == {} and closed["sources_merged"] is True
    assert closed["tally"] == {"甲": 3, "乙": 1}
    receipts = await client.get(
        f"/api/meetings/{meeting['id']}/votes/{vote_id}/receipts", headers=auth(clerk_token)
    )
    assert (
        receipts.status == 409 and (await receipts.json())["error"]["code"] == "receipts_withheld"
    )
    # the committee's record holds the ballot event, without a voter; others see none
    host_timeline = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
        ).json()
    )["events"]
    ballots = [e for e in host_timeline if e["type"] == "vote:ballot"]
    assert ballots and all("voter" not in e and "choice" not in e for e in ballots)
    public = (await (await client.get(f"/api/meetings/{meeting['id']}/timeline")).json())["events"]
    assert not [
        e for e in public if e["type"] in ("vote:ballot", "attendance:joined", "attendance:left")
    ]
    late, _ = await room.join(since_seq=0)  # an anonymous replay gets no committee-only events
    await asyncio.sleep(0.2)
    assert not [
        n for n, _ in late.events if n in ("vote:ballot", "attendance:joined", "attendance:left")
    ]
    assert [n for n, _ in late.events if n == "vote:closed"]
