"""A short drop is not leaving (issue 16, failure 2): ATTENDANCE_LEAVE_GRACE.

Real socket.io clients against the app: a member's only phone disconnects and a device
of theirs joins again within the grace: nothing is recorded, neither a leave nor a second
join. Gone for longer than the grace: one ``attendance:left``, whose ``left_at`` is when
the phone went. Leaves still in their grace go on the record when the server stops and
when the meeting ends (before its end: an ended meeting records no attendance).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from server.app import create_app
from server.keys import LIVE
from server.settings import Settings

from .support.api import auth, member, server_env, start_meeting
from .support.realtime import Room

GRACE = 0.6


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    env = {**server_env(tmp_path), "ATTENDANCE_LEAVE_GRACE": str(GRACE)}
    return await aiohttp_client(create_app(Settings.from_env(env)))


async def attendance(client, meeting_id: int, token: str) -> list[tuple[str, str]]:
    """The committee's timeline: (type, member's id) of each member's attendance event,
    and (``meeting:status``, status), in order."""
    response = await client.get(f"/api/meetings/{meeting_id}/timeline", headers=auth(token))
    assert response.status == 200, await response.text()
    return [
        (e["type"], e["participant"]["id"] if "participant" in e else e.get("status"))
        for e in (await response.json())["events"]
        if e["type"] == "meeting:status"
        or (e["type"].startswith("attendance:") and e["participant"]["role"] == "member")
    ]


async def test_a_short_drop_records_nothing_and_a_long_one_one_leave(client, clerk_token):
    meeting = await start_meeting(client, clerk_token)
    mid = meeting["id"]
    room = Room(client, meeting)
    live = client.app[LIVE]
    try:
        host, _ = await room.join(clerk_token)
        pid, token = await member(client, clerk_token, "王五")
        phone, _ = await room.join(token)
        await host.wait_for("attendance:joined", lambda d: d["participant"]["id"] == pid)

        # the phone's connection drops and it comes back well within the grace
        await phone.close()
        await room.join(token)
        await asyncio.sleep(GRACE * 2)
        assert await attendance(client, mid, clerk_token) == [
            ("meeting:status", "live"),
            ("attendance:joined", pid),
        ]

        # gone for longer than the grace: one leave, dated when the phone went
        went = datetime.now().astimezone()
        for person in room.people[2:]:
            await person.close()
        left = await host.wait_for(
            "attendance:left", lambda d: d["participant"]["id"] == pid, timeout=10
        )
        left_at = datetime.fromisoformat(left["left_at"])
        assert abs((left_at - went).total_seconds()) < GRACE, (left_at, went)
        assert (datetime.now().astimezone() - left_at).total_seconds() >= GRACE
        assert await attendance(client, mid, clerk_token) == [
            ("meeting:status", "live"),
            ("attendance:joined", pid),
            ("attendance:left", pid),
        ]

        # leaves in their grace: recorded when the server stops, and when the meeting ends
        live.attendance.grace = 600
        stopping_id, stopping_token = await member(client, clerk_token, "赵六")
        ending_id, ending_token = await member(client, clerk_token, "孙七")
        for token in (stopping_token, ending_token):
            await (await room.join(token))[0].wait_for("presence")
        await room.people[-2].close()
        await wait_until(lambda: live.attendance.leaving(mid) == [stopping_id])
        await live.attendance.close()
        await room.people[-1].close()
        await wait_until(lambda: live.attendance.leaving(mid) == [ending_id])
        ended = await client.post(f"/api/meetings/{mid}/end", headers=auth(clerk_token))
        assert ended.status == 200
        assert (await attendance(client, mid, clerk_token))[3:] == [
            ("attendance:joined", stopping_id),
            ("attendance:joined", ending_id),
            ("attendance:left", stopping_id),
            ("attendance:left", ending_id),
            ("meeting:status", "ended"),
        ]
        assert live.attendance.leaving(mid) == []
    finally:
        await room.close()


async def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_setting_reads_from_the_environment(tmp_path):
    env = server_env(tmp_path)
    assert Settings.from_env({**env, "ATTENDANCE_LEAVE_GRACE": "90"}).attendance_leave_grace == 90
    env.pop("ATTENDANCE_LEAVE_GRACE", None)
    assert Settings.from_env(env).attendance_leave_grace == 60


async def test_a_join_the_database_refused_is_recorded_when_the_phone_joins_again():
    """The join's write fails (database down, 503): the phone's next join is a first one.

    Before, the device was counted before the write, so the retried join recorded
    nothing and the member was missing from every vote's "present" until they left.
    The record function here stands in for the database write only: the bookkeeping
    of devices is what is tested.
    """
    from server.attendance import Attendance
    from server.services.tokens import Principal
    from server.store.outage import unavailable

    written: list[bool] = []
    refuse = [True]

    async def record(meeting_id, principal, joined, left_at):
        if refuse and refuse.pop():
            raise unavailable()
        written.append(joined)

    attendance = Attendance(record, grace=60)
    villager = Principal("m7", "王秀英", "member", village_id=1)
    with pytest.raises(Exception, match="not answering"):
        await attendance.joined("sid-1", 5, villager)
    assert attendance.devices == {}
    await attendance.joined("sid-1", 5, villager)  # the page sends its join again
    assert written == [True]
    await attendance.joined("sid-2", 5, villager)  # a second phone: no second join
    assert written == [True]
