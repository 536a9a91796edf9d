"""socket.io with a real client: join, live meeting status, seq replay, presence."""

from __future__ import annotations

import socketio

from .support.api import auth, create_meeting
from .support.peers import Publisher, Viewer
from .support.realtime import Recorder


async def test_watchers_hear_the_meeting_start_and_end(client, clerk_token):
    meeting = await create_meeting(client, clerk_token, allow_guests=True)
    watcher = Recorder()
    try:
        await watcher.connect(client)
        ack = await watcher.call("join", {"meeting_id": meeting["id"]})
        assert ack["ok"] is True
        assert ack["state"]["meeting"]["status"] == "scheduled"
        assert ack["you"]["role"] == "viewer" and ack["seq"] == 0

        await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
        live = await watcher.wait_for("meeting:status")
        assert live == {"status": "live", "seq": 1}
        await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))
        ended = await watcher.wait_for("meeting:status", lambda d: d["status"] == "ended")
        assert ended["seq"] == 2
    finally:
        await watcher.close()


async def test_rejoin_with_since_seq_replays_exactly_what_was_missed(client, clerk_token):
    meeting = await create_meeting(client, clerk_token, allow_guests=True)
    await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(clerk_token))
    late = Recorder()
    try:
        await late.connect(client)
        ack = await late.call("join", {"meeting_id": meeting["id"], "since_seq": 1})
        assert ack["ok"] and ack["seq"] == 2
        assert [e for e in late.events if e[0] == "meeting:status"] == [
            ("meeting:status", {"status": "ended", "seq": 2})
        ]
    finally:
        await late.close()


async def test_members_only_meeting_refuses_anonymous_join(client, clerk_token):
    meeting = await create_meeting(client, clerk_token)
    anonymous, clerk = Recorder(), Recorder()
    try:
        await anonymous.connect(client)
        ack = await anonymous.call("join", {"meeting_id": meeting["id"]})
        assert ack == {
            "ok": False,
            "error": {"code": "unauthorized", "message": ack["error"]["message"]},
        }
        await clerk.connect(client, clerk_token)
        ack = await clerk.call("join", {"meeting_id": meeting["id"]})
        assert ack["ok"] and ack["you"]["role"] == "committee" and ack["you"]["name"] == "clerk"
        bad = await clerk.call("join", {"meeting_id": "nope"})
        assert bad["ok"] is False and bad["error"]["code"] == "not_found"
        bad = await clerk.call("join", {})
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
    finally:
        await anonymous.close()
        await clerk.close()


async def test_bad_token_is_refused_at_connect(client):
    recorder = Recorder()
    refusals = []
    recorder.sio.on("connect_error", refusals.append)
    try:
        await recorder.connect(client, "forged-token")
    except socketio.exceptions.ConnectionError:
        assert refusals and refusals[0]["message"] == "unauthorized", refusals
        assert refusals[0]["data"]["code"] == "unauthorized"
    else:
        raise AssertionError("a forged token was accepted")


async def test_host_sees_the_live_viewer_count(client, clerk_token, live_meeting):
    host = Recorder()
    publisher, viewer = Publisher(), Viewer()
    try:
        await host.connect(client, clerk_token)
        assert (await host.call("join", {"meeting_id": live_meeting["id"]}))["ok"]
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await host.wait_for("presence", lambda d: d["publishing"] is True)
        await viewer.watch(client, live_meeting["id"])
        presence = await host.wait_for("presence", lambda d: d["viewers"] == 1)
        assert "seq" not in presence  # presence is transient
        await client.delete(viewer.location)
        await host.wait_for("presence", lambda d: d["viewers"] == 0 and d["publishing"])
    finally:
        await host.close()
        await viewer.close()
        await publisher.close()
