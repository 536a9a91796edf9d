"""The live room over real socket.io clients: chat, hands, floor, attendance, limits."""

from __future__ import annotations

import asyncio

from .support.api import auth, login_clerk, member, start_meeting
from .support.realtime import Recorder, named


async def test_chat_reaches_everyone_in_order_exactly_as_typed(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token, allow_guests=True)
    room = room_of(meeting)
    writer_id, writer_token = await member(client, clerk_token, "张三")
    writer, _ = await room.join(writer_token)
    host, _ = await room.join(clerk_token)
    viewer, _ = await room.join()  # anonymous viewer of an open meeting

    texts = [
        "大家好",
        "<script>alert(1)</script>",
        "  两个空格  ",
        "http://example.com/a?b=1",
        "最后一句",
    ]
    acks = [await writer.call("chat:send", {"text": t}) for t in texts]
    assert all(a["ok"] for a in acks), acks
    for listener in (host, viewer, writer):
        got = await listener.wait_for("chat:message", lambda d: d["text"] == "最后一句")
        lines = named(listener.events, "chat:message")
        assert [m["text"] for m in lines] == texts
        assert [m["seq"] for m in lines] == sorted(m["seq"] for m in lines)
        assert got["author"] == {"id": writer_id, "name": "张三", "role": "member"}
    assert [a["id"] for a in acks] == [a["seq"] for a in acks]

    # committed before the ack: the timeline already holds them, and a late joiner sees them
    timeline = await (
        await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
    ).json()
    assert [e["text"] for e in timeline["events"] if e["type"] == "chat:message"] == texts
    _, late = await room.join()
    assert [m["text"] for m in late["state"]["chat"]] == texts


async def test_hand_queue_is_the_same_on_every_screen_for_20_concurrent_raisers(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    members = [await member(client, clerk_token, f"村民{i}") for i in range(20)]
    people = [(await room.join(token))[0] for _, token in members]

    acks = await asyncio.gather(*(p.call("hand:raise", {}) for p in people))
    assert all(a["ok"] for a in acks), acks

    def full(d):
        return len(d["queue"]) == 20

    finals = [await p.wait_for("hand:queue", full) for p in [host, *people]]
    orders = [[h["participant_id"] for h in f["queue"]] for f in finals]
    assert all(order == orders[0] for order in orders)
    assert sorted(orders[0]) == sorted(pid for pid, _ in members)
    since = [h["since"] for h in finals[0]["queue"]]
    assert since == sorted(since)  # first raised, first in line
    # raising again keeps one's place; a reconnecting client gets the queue in the ack
    assert (await people[0].call("hand:raise", {}))["ok"]
    _, ack = await room.join(members[5][1])
    assert [h["participant_id"] for h in ack["state"]["hands"]] == orders[0]

    lowered = await people[3].call("hand:lower", {})
    assert lowered["ok"]
    after = await host.wait_for("hand:queue", lambda d: d["action"] == "lower")
    assert members[3][0] not in [h["participant_id"] for h in after["queue"]]
    # the committee lowers someone else's hand
    assert (await host.call("hand:lower", {"participant_id": orders[0][0]}))["ok"]
    await host.wait_for("hand:queue", lambda d: d["action"] == "lower" and len(d["queue"]) == 18)


async def test_floor_grant_revoke_and_speaking_time(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    speaker_id, speaker_token = await member(client, clerk_token, "李四")
    speaker, _ = await room.join(speaker_token)
    await speaker.call("hand:raise", {})

    granted = await host.call("floor:grant", {"participant_id": speaker_id})
    assert granted["ok"], granted
    change = await speaker.wait_for("floor:changed", lambda d: d["participant_id"] == speaker_id)
    assert change["name"] == "李四" and change["until"] is None
    queue = await speaker.wait_for("hand:queue", lambda d: True)  # from the raise
    assert queue["queue"][0]["participant_id"] == speaker_id
    _, ack = await room.join(speaker_token)  # the floor and lowered hand are in the ack
    assert ack["state"]["floor"]["participant_id"] == speaker_id and ack["state"]["hands"] == []

    assert (await host.call("floor:revoke", {}))["ok"]
    ended = await speaker.wait_for("floor:changed", lambda d: d["participant_id"] is None)
    assert ended["ended"]["participant_id"] == speaker_id and ended["ended"]["seconds"] >= 0
    assert ended["ended"]["reason"] == "revoked"

    # a speaking time: the server takes the floor back when it runs out
    assert (await host.call("floor:grant", {"participant_id": speaker_id, "seconds": 1}))["ok"]
    timed_out = await speaker.wait_for(
        "floor:changed", lambda d: d.get("ended", {}).get("reason") == "time_up", timeout=5
    )
    assert timed_out["participant_id"] is None and 0.9 <= timed_out["ended"]["seconds"] < 3


async def test_reconnecting_client_receives_exactly_the_10_events_it_missed(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token, allow_guests=True)
    room = room_of(meeting)
    writers = [await member(client, clerk_token, f"写{i}") for i in range(2)]
    sockets = [(await room.join(token))[0] for _, token in writers]
    viewer, ack = await room.join()  # anonymous: its own comings and goings are not events
    await asyncio.sleep(0.3)
    last = max([ack["seq"], *(d["seq"] for _, d in viewer.events if "seq" in d)])
    await viewer.close()

    for i in range(10):
        answer = await sockets[i % 2].call("chat:send", {"text": f"第{i}条"})
        assert answer["ok"], answer

    back, ack = await room.join(since_seq=last)
    replayed = [(name, d) for name, d in back.events if "seq" in d]
    assert [d["seq"] for _, d in replayed] == list(range(last + 1, last + 11))
    assert [d["text"] for _, d in replayed] == [f"第{i}条" for i in range(10)]
    assert ack["seq"] == last + 10


async def test_flooding_is_refused_while_others_are_still_heard(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    _, flood_token = await member(client, clerk_token, "刷屏")
    _, calm_token = await member(client, clerk_token, "正常")
    flooder, _ = await room.join(flood_token)
    calm, _ = await room.join(calm_token)
    host, _ = await room.join(clerk_token)

    results = await asyncio.gather(
        *(flooder.call("chat:send", {"text": f"刷{i}"}) for i in range(20))
    )
    accepted = [r for r in results if r["ok"]]
    refused = [r for r in results if not r["ok"]]
    assert len(accepted) == 5 and {r["error"]["code"] for r in refused} == {"rate_limited"}
    assert (await calm.call("chat:send", {"text": "我来说一句"}))["ok"]
    await host.wait_for("chat:message", lambda d: d["text"] == "我来说一句", timeout=2)
    assert len(named(host.events, "chat:message")) == 6


async def test_bad_payloads_get_bad_request_and_change_nothing(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    _, token = await member(client, clerk_token)
    person, ack = await room.join(token)
    host, _ = await room.join(clerk_token)
    for event, payload, code in (
        ("chat:send", {"text": "长" * 501}, "too_large"),
        ("chat:send", {"text": "   "}, "bad_request"),
        ("chat:send", {"text": 5}, "bad_request"),
        ("chat:send", ["not", "an", "object"], "bad_request"),
        ("chat:send", "text", "bad_request"),
    ):
        answer = await person.call(event, payload)
        assert answer == {
            "ok": False,
            "error": {"code": code, "message": answer["error"]["message"]},
        }
    for payload in (
        {},
        {"participant_id": 5},
        {"participant_id": "m999999"},
        {"participant_id": "g123"},
        {"participant_id": "m1", "seconds": 0},
        {"participant_id": "m1", "seconds": "60"},
    ):
        answer = await host.call("floor:grant", payload)
        assert not answer["ok"] and answer["error"]["code"] == "bad_request", (payload, answer)
    for payload in ({}, {"in_hall": -1}, {"in_hall": "30"}, {"member_id": "x"}):
        answer = await host.call("attendance:hall", payload)
        assert not answer["ok"] and answer["error"]["code"] == "bad_request", (payload, answer)
    unknown = await host.call("chat:delete", {"id": 999999})
    assert unknown["error"]["code"] == "not_found"
    stranger = Recorder()
    await stranger.connect(client, token)
    not_joined = await stranger.call("chat:send", {"text": "hi"})
    await stranger.close()
    assert not_joined["error"]["code"] == "bad_request"
    # nothing was stored by any of them
    timeline = await (
        await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(clerk_token))
    ).json()
    assert not [
        e
        for e in timeline["events"]
        if e["type"] not in ("meeting:status", "attendance:joined", "attendance:left")
    ]


async def test_the_committee_moderates_chat_and_counts_the_hall(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    member_id, token = await member(client, clerk_token, "王五")
    person, _ = await room.join(token)
    host, _ = await room.join(clerk_token)

    sent = await person.call("chat:send", {"text": "广告"})
    assert (await host.call("chat:delete", {"id": sent["id"]}))["ok"]
    assert (await person.wait_for("chat:deleted"))["id"] == sent["id"]
    _, ack = await room.join(token)
    assert ack["state"]["chat"] == []  # deleted lines are not shown to newcomers

    assert (await host.call("chat:mute", {"participant_id": member_id}))["ok"]
    await person.wait_for("chat:muted")
    muted = await person.call("chat:send", {"text": "还想说"})
    assert muted["error"]["code"] == "muted"
    _, ack = await room.join(token)
    assert ack["state"]["muted"] is True
    assert (await host.call("chat:mute", {"participant_id": member_id, "muted": False}))["ok"]
    assert (await person.call("chat:send", {"text": "谢谢"}))["ok"]

    assert (await host.call("attendance:hall", {"in_hall": 35}))["ok"]
    presence = await person.wait_for("presence", lambda d: d.get("in_hall") == 35)
    assert presence["remote"] >= 1
    ticked = await host.call("attendance:hall", {"member_id": int(member_id[1:]), "present": True})
    assert ticked["ok"]
    hall = await person.wait_for("attendance:hall", lambda d: d.get("member"))
    assert hall["hall_members"] == [int(member_id[1:])] and hall["in_hall"] == 35

    here = await host.call("attendance:list", {})
    assert {p["id"]: p["devices"] for p in here["participants"]}[member_id] == 3  # 3 joins


async def test_one_member_on_two_devices_counts_once_and_leaves_are_recorded(
    client, clerk_token, room_of
):
    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    member_id, token = await member(client, clerk_token, "赵六")
    host, _ = await room.join(clerk_token)
    phone, _ = await room.join(token)
    tablet, _ = await room.join(token)
    await asyncio.sleep(0.4)
    presence = named(host.events, "presence")[-1]
    # the committee's own device is not counted (issue 14): only the member, once
    assert presence["online"] == 1 and presence["remote"] == 1 and presence["committee"] == 1

    await phone.close()
    await tablet.close()
    left = await host.wait_for("attendance:left", lambda d: d["participant"]["id"] == member_id)
    joined = named(host.events, "attendance:joined")
    assert [j["participant"]["id"] for j in joined].count(member_id) == 1
    assert left["seq"] > joined[-1]["seq"]
    await host.wait_for("presence", lambda d: d["online"] == 0)


# ----------------------------------------------------------------- role × event matrix

ROLES = ("anonymous", "guest", "member", "other_member", "other_committee", "committee")
# who may send each client event; everyone else gets "forbidden" and nothing changes
ALLOWED = {
    "chat:send": {"member", "committee"},  # guests only where the meeting allows guest chat
    "chat:delete": {"committee"},
    "chat:mute": {"committee"},
    "hand:raise": {"member"},
    "hand:lower": {"member"},
    "floor:grant": {"committee"},
    "floor:revoke": {"committee"},
    "attendance:hall": {"committee"},
    "attendance:list": {"committee"},
}


async def test_role_event_matrix(client, clerk_token, room_of):
    """Every client event × every kind of caller → ok, or forbidden with no stored change."""
    meeting = await start_meeting(client, clerk_token, allow_guests=True)
    b_token = await login_clerk(client, "b-clerk", village="李家村")
    target_id, member_token = await member(client, clerk_token, "本村")
    b_added = await (
        await client.post("/api/members", json={"name": "外村"}, headers=auth(b_token))
    ).json()
    other_member = (
        await (await client.post("/api/join", json={"invite": b_added["invite"]})).json()
    )["token"]
    guest = (
        await (
            await client.post("/api/join", json={"meeting_code": meeting["code"], "name": "客人"})
        ).json()
    )["token"]
    client.session.cookie_jar.clear()
    tokens = {
        "anonymous": None,
        "guest": guest,
        "member": member_token,
        "other_member": other_member,
        "other_committee": b_token,
        "committee": clerk_token,
    }
    room = room_of(meeting)
    sockets = {role: (await room.join(token))[0] for role, token in tokens.items()}
    first_chat = await sockets["committee"].call("chat:send", {"text": "第一条"})

    payloads = {
        "chat:send": {"text": "你好"},
        "chat:delete": {"id": first_chat["id"]},
        "chat:mute": {"participant_id": "g0000", "muted": True},
        "hand:raise": {},
        "hand:lower": {},
        "floor:grant": {"participant_id": target_id},
        "floor:revoke": {},
        "attendance:hall": {"in_hall": 12},
        "attendance:list": {},
    }
    for event, allowed in ALLOWED.items():
        for role in ROLES:
            before = await _last_seq(client, clerk_token, meeting)
            answer = await sockets[role].call(event, payloads[event])
            if role in allowed:
                assert answer["ok"], (event, role, answer)
            else:
                assert answer["ok"] is False, (event, role, answer)
                assert answer["error"]["code"] == "forbidden", (event, role, answer)
                assert await _last_seq(client, clerk_token, meeting) == before, (event, role)
            if event == "chat:mute" and answer["ok"]:
                await sockets[role].call("chat:mute", {"participant_id": "g0000", "muted": False})


async def _last_seq(client, token, meeting) -> int:
    events = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(token))
        ).json()
    )["events"]
    return events[-1]["seq"] if events else 0


async def test_guests_chat_only_where_the_meeting_allows_it(client, clerk_token, room_of):
    meeting = await start_meeting(client, clerk_token, allow_guests=True, allow_guest_chat=True)
    guest = (
        await (
            await client.post(
                "/api/join", json={"meeting_code": meeting["code"], "name": "<b>客人</b>"}
            )
        ).json()
    )["token"]
    client.session.cookie_jar.clear()
    room = room_of(meeting)
    person, _ = await room.join(guest)
    answer = await person.call("chat:send", {"text": "路过看看"})
    assert answer["ok"], answer
    line = await person.wait_for("chat:message")
    assert line["author"]["role"] == "guest" and line["author"]["name"] == "<b>客人</b>"
    assert (await person.call("hand:raise", {}))["error"]["code"] == "forbidden"


async def test_a_chat_storm_is_shed_so_the_chair_is_not_queued_behind_it(
    client, clerk_token, room_of
):
    from server.keys import LIVE
    from server.realtime import MAX_WAITING

    meeting = await start_meeting(client, clerk_token)
    room = room_of(meeting)
    host, _ = await room.join(clerk_token)
    people = [
        (await room.join((await member(client, clerk_token, f"人{i}"))[1]))[0]
        for i in range(MAX_WAITING + 5)
    ]
    lock = client.app[LIVE].room_lock(meeting["id"])
    async with lock:  # the room is busy: everything queues
        sends = [
            asyncio.ensure_future(p.call("chat:send", {"text": f"第{i}条"}))
            for i, p in enumerate(people)
        ]
        await asyncio.sleep(0.5)
        shed = [s.result() for s in sends if s.done()]
        assert len(shed) == 5 and {a["error"]["code"] for a in shed} == {"rate_limited"}
        raise_hand = asyncio.ensure_future(people[0].call("hand:raise", {}))  # never shed
        await asyncio.sleep(0.1)
    answers = await asyncio.gather(*sends)
    assert sum(a["ok"] for a in answers) == MAX_WAITING
    assert (await raise_hand)["ok"]
