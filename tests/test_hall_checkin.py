"""The hall's two numbers (issue 14, wall 3): people in the hall, and the members there.

The headcount the committee types ("会场人数") is people, for the minutes; the vote rules
count only the members present in the hall, ticked on the roll or checked in by
scanning their printed member card (``attendance:checkin {invite}``).
"""

from __future__ import annotations

import pytest
import socketio

from .support.api import add_member, auth, second_village_clerk, start_meeting


async def roll_of_six(client, clerk_token) -> list[dict]:
    """Six members on the roll, each with the invite their printed card carries."""
    return [await add_member(client, clerk_token, f"村民{i}") for i in range(6)]


@pytest.mark.parametrize("rule", ["villagers_assembly", "simple_majority"])
async def test_35_people_in_the_hall_are_not_37_voters(client, clerk_token, room_of, rule):
    """The report: 35 typed on a 6-member roll showed 到会 37 / 应投 6, and 4 同意 failed."""
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    roll = await roll_of_six(client, clerk_token)
    for person in roll[:4]:  # four cards scanned at the door
        checked = await host.call("attendance:checkin", {"invite": person["invite"]})
        assert checked["ok"], checked
        assert checked["member"] == {"id": person["id"], "name": person["name"], "already": False}
    assert (await host.call("attendance:hall", {"in_hall": 35}))["ok"]
    hall = await host.wait_for("attendance:hall", lambda d: d.get("in_hall") == 35)
    assert hall["hall_members"] == [p["id"] for p in roll[:4]]

    vote_id = (await host.call("vote:open", {"question": "修路?", "rule": rule}))["vote_id"]
    opened = await host.wait_for("vote:opened")
    assert (opened["present"], opened["eligible"]) == (4, 6)  # not 37 of 6
    # the hall's four raise their hands: four is all the hall may count
    too_many = await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 5}})
    assert (too_many["error"]["hall_voters"], too_many["error"]["counted"]) == (4, 5)
    assert (await host.call("vote:hall", {"vote_id": vote_id, "counts": {"同意": 4}}))["ok"]
    closed = await host.call("vote:close", {"vote_id": vote_id})
    assert (closed["cast"], closed["present"], closed["eligible"]) == (4, 4, 6)
    assert closed["tally"]["同意"] == 4
    assert closed["quorum_met"] is True and closed["passed"] is True

    # the minutes keep both numbers, each with its meaning
    assert (await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))).ok
    text = await (
        await client.get(f"/api/meetings/{meeting['id']}/minutes.md", headers=auth(clerk_token))
    ).text()
    assert "会场清点人数: 35 （仅记入会议记录，不计入表决）" in text
    assert "会场登记到会村民：4 人 (村民0、村民1、村民2、村民3)" in text
    assert "（刷卡签到或在名册上勾选，计入表决）" in text


async def test_a_headcount_below_the_members_checked_in_is_refused(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    roll = await roll_of_six(client, clerk_token)
    for person in roll[:4]:
        assert (await host.call("attendance:hall", {"member_id": person["id"]}))["ok"]
    refused = await host.call("attendance:hall", {"in_hall": 3})
    assert refused["ok"] is False and refused["error"]["code"] == "bad_request"
    assert (refused["error"]["in_hall"], refused["error"]["hall_members"]) == (3, 4)
    assert refused["error"]["message"] == (
        "the hall headcount 3 is less than the 4 members checked in there: "
        "count the people in the hall again"
    )
    # in one go, a tick and a headcount that leaves it behind: refused, nothing changed
    both = await host.call("attendance:hall", {"in_hall": 4, "member_id": roll[4]["id"]})
    assert (both["error"]["in_hall"], both["error"]["hall_members"]) == (4, 5)
    assert (await host.call("attendance:hall", {"in_hall": 4}))["ok"]  # as many: fine
    assert (await host.call("attendance:hall", {"in_hall": None}))["ok"]  # not counted: fine

    # a Chinese clerk reads it in Chinese, with the numbers
    zh = socketio.AsyncClient(reconnection=False)
    await zh.connect(
        str(client.make_url("/")),
        auth={"token": clerk_token},
        headers={"Accept-Language": "zh-CN"},
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        assert (await zh.call("join", {"meeting_id": meeting["id"]}, timeout=5))["ok"]
        answer = await zh.call("attendance:hall", {"in_hall": 2}, timeout=5)
        assert answer["error"]["message"] == "会场人数 2 少于已签到的成员 4 人：请重新清点会场人数"
    finally:
        await zh.disconnect()


async def test_a_card_checks_in_its_member_and_other_cards_are_refused_in_words(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    roll = await roll_of_six(client, clerk_token)
    wang = await add_member(client, clerk_token, "王秀英")
    # a member's phone sees the hall fill up
    member_token = await client.post("/api/join", json={"invite": roll[0]["invite"]})
    phone, _ = await room.join((await member_token.json())["token"])

    # the QR code holds the whole link; the server takes the invite out of it
    card = f"http://village.example/i/{wang['invite']}"
    checked = await host.call("attendance:checkin", {"invite": card})
    assert checked["ok"] and checked["member"]["name"] == "王秀英" and checked["seq"]
    seen = await phone.wait_for("attendance:hall", lambda d: d.get("member"))
    assert seen["member"] == {"id": wang["id"], "name": "王秀英", "present": True, "via": "card"}
    assert seen["hall_members"] == [wang["id"]]
    again = await host.call("attendance:checkin", {"invite": wang["invite"]})
    assert again["ok"] and again["member"]["already"] is True and "seq" not in again

    async def refused(invite) -> dict:
        answer = await host.call("attendance:checkin", {"invite": invite})
        assert answer["ok"] is False and answer["error"]["code"] == "bad_request", answer
        return answer["error"]

    # garbage, a meeting's QR code, a login token: not a member card
    for junk in (
        "hello",
        "",
        "x" * 5000,
        f"http://village.example/m/{meeting['code']}",
        clerk_token,
    ):
        error = await refused(junk)
        assert error["reason"] == "not_a_card"
        assert error["message"] == "this QR code is not a member card of this village"
    assert (await host.call("attendance:checkin", {"invite": 12}))["error"]["reason"] == (
        "not_a_card"
    )
    # another village's card
    other_clerk = await second_village_clerk(client)
    outsider = await add_member(client, other_clerk, "外村人")
    error = await refused(outsider["invite"])
    assert error["reason"] == "other_village"
    assert error["message"] == "this member card belongs to another village"
    # an old card, replaced after the member lost it
    old = roll[1]["invite"]
    renewed = await client.post(f"/api/members/{roll[1]['id']}/invite", headers=auth(clerk_token))
    assert renewed.status == 200
    error = await refused(old)
    assert error["reason"] == "replaced"
    assert error["message"] == (
        "this card of 村民1 has been replaced by a newer one: scan the new card"
    )
    assert (await host.call("attendance:checkin", {"invite": (await renewed.json())["invite"]}))[
        "ok"
    ]
    # a member taken off the roll: their card no longer counts
    removed = await client.delete(f"/api/members/{roll[2]['id']}", headers=auth(clerk_token))
    assert removed.status in (200, 204)
    assert (await refused(roll[2]["invite"]))["reason"] == "removed"

    # only the two good cards ticked anyone
    hall = await phone.wait_for("attendance:hall", lambda d: len(d["hall_members"]) == 2)
    assert hall["hall_members"] == [wang["id"], roll[1]["id"]]
    # a member's phone may not check anyone in, nor learn whose card it is
    answer = await phone.call("attendance:checkin", {"invite": roll[3]["invite"]})
    assert answer["error"]["code"] == "forbidden" and "member" not in answer
