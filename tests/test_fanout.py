"""Encoded fan-out with real aiortc peers: nothing decoded or encoded per viewer."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.keys import MEDIA

from .support.api import auth
from .support.peers import Publisher, Viewer

VIEWERS = 20


def room_of(client, meeting):
    return client.app[MEDIA].room(str(meeting["id"]))


def server_tracks(room, kind="video"):
    return list(room.fanouts[kind].viewers)


async def settle(viewers, seconds: float) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_twenty_viewers_get_every_frame_and_one_decodes_it(
    client, clerk_token, live_meeting, codec
):
    publisher = Publisher(width=320, height=240, codec=codec)
    decoding = Viewer(decode=True)
    counting = [Viewer(decode=False) for _ in range(VIEWERS - 1)]
    viewers = [decoding, *counting]
    room = room_of(client, live_meeting)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await asyncio.gather(*(v.watch(client, live_meeting["id"]) for v in viewers))
        await asyncio.gather(*(v.wait_for(video=10, audio=5, timeout=15) for v in viewers))
        assert room.video_codec == codec.lower()
        tracks = {id(t): t for t in server_tracks(room)}
        await asyncio.sleep(4)  # ~120 frames at 30 fps
        await publisher.close()
        await asyncio.sleep(1.0)  # let the last frames arrive
        sent_total = room.fanouts["video"].frames
        assert sent_total >= 100
        # every viewer got >= 99 % of what was sent after its first keyframe
        starts = sorted(t.first_frame for t in tracks.values())
        for viewer in viewers:
            # match each client to a server track by its count: all start at the
            # same keyframe here, so the earliest start is the strictest bound
            expected = sent_total - starts[-1]
            assert viewer.video_frames >= 0.99 * expected, (viewer.video_frames, expected)
            assert viewer.audio_frames > 100
        assert decoding.sizes == {(320, 240)}  # decoded without error at the published size
        assert all(v.keyframe_first for v in counting)  # every picture started at a keyframe
    finally:
        await asyncio.gather(*(v.close() for v in viewers))
        await publisher.close()


async def test_a_stalled_viewer_does_not_slow_the_others(client, clerk_token, live_meeting):
    publisher = Publisher(width=320, height=240)
    viewers = [Viewer(decode=False) for _ in range(3)]
    room = room_of(client, live_meeting)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        for viewer in viewers:
            await viewer.watch(client, live_meeting["id"])
        await asyncio.gather(*(v.wait_for(video=10, timeout=15) for v in viewers))
        # One viewer's socket stops draining (a stalled phone): the kernel would
        # refuse its datagrams and asyncio would buffer them. Report a full buffer.
        from media.fanout import MAX_BACKLOG_BYTES

        stalled = server_tracks(room)[0]
        forwarder = stalled._forwarder
        stalled_now = True
        real_backlog = forwarder.backlog
        forwarder.backlog = lambda: MAX_BACKLOG_BYTES + 1 if stalled_now else real_backlog()
        before = {id(v): v.video_frames for v in viewers}
        sent_before = room.fanouts["video"].frames
        await asyncio.sleep(3)
        sent = room.fanouts["video"].frames - sent_before
        gains = sorted(v.video_frames - before[id(v)] for v in viewers)
        # two viewers kept up in full; the stalled one got (almost) nothing
        assert gains[0] <= 3
        assert gains[1] >= 0.97 * sent and gains[2] >= 0.97 * sent, (gains, sent)
        # nothing was queued for it, and it was set back to wait for a keyframe
        assert stalled.dropped >= sent - 3 and stalled._need_keyframe
        upstream = room.keyframes.sent
        stalled_now = False
        # once it reads again it recovers, starting at a keyframe
        frames = min(v.video_frames for v in viewers)
        for _ in range(100):
            if min(v.video_frames for v in viewers) > frames + 20:
                break
            await asyncio.sleep(0.05)
        assert min(v.video_frames for v in viewers) > frames + 20
        assert room.keyframes.sent >= upstream  # it asked for the keyframe it restarted at
    finally:
        await asyncio.gather(*(v.close() for v in viewers))
        await publisher.close()


async def test_joining_mid_stream_starts_at_a_keyframe_and_requests_are_rate_limited(
    client, clerk_token, live_meeting
):
    publisher = Publisher(width=320, height=240)
    room = room_of(client, live_meeting)
    viewers = [Viewer(decode=False) for _ in range(VIEWERS)]
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        early = Viewer(decode=False)
        await early.watch(client, live_meeting["id"])
        await early.wait_for(video=30, timeout=15)  # the stream is well under way
        await early.close()
        sent_before = room.keyframes.sent
        started = time.monotonic()
        await asyncio.gather(*(v.watch(client, live_meeting["id"]) for v in viewers))
        await asyncio.gather(*(v.wait_for(video=5, timeout=15) for v in viewers))
        elapsed = time.monotonic() - started
        assert all(v.keyframe_first for v in viewers)
        # every viewer that joined between keyframes asked for one (one that joined as a
        # keyframe went by, e.g. the recorder's every 2 s, had nothing to ask) ...
        waited = [t for t in room.fanouts["video"].viewers if t.first_frame != t.ready_frame]
        assert room.keyframes.requested >= len(waited), (room.keyframes.requested, len(waited))
        upstream = room.keyframes.sent - sent_before
        limit = 1 + elapsed / room.keyframes.min_interval
        # ... and the phone was asked rarely
        assert (1 if waited else 0) <= upstream <= limit, (upstream, limit)
        # once connected, no viewer waited more than ~a second of frames for its picture
        waits = room.stats()["keyframe_wait_frames"]
        assert waits["n"] == VIEWERS and waits["max"] <= 30, waits
    finally:
        await asyncio.gather(*(v.close() for v in viewers))
        await publisher.close()


async def test_viewer_whose_offer_lacks_the_rooms_codec_is_told_why(
    client, clerk_token, live_meeting
):
    from aiortc import RTCPeerConnection, RTCRtpReceiver

    from .support.peers import NO_ICE_SERVERS, gathered_offer

    publisher = Publisher(width=320, height=240, codec="video/H264")
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        video = pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences(
            [c for c in RTCRtpReceiver.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
        )
        response = await client.post(
            f"/whep/{live_meeting['id']}",
            data=await gathered_offer(pc),
            headers={"Content-Type": "application/sdp"},
        )
        assert response.status == 422
        body = await response.json()
        assert body["error"]["code"] == "unsupported_codec"
        assert "video/h264" in body["error"]["message"]
        assert client.app[MEDIA].stats(str(live_meeting["id"])).viewers == 0
    finally:
        await pc.close()
        await publisher.close()


async def test_media_counters_for_operators(client, clerk_token, live_meeting):
    publisher, viewer = Publisher(width=320, height=240), Viewer(decode=False)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await viewer.watch(client, live_meeting["id"])
        await viewer.wait_for(video=20, timeout=15)
        response = await client.get(
            f"/api/meetings/{live_meeting['id']}/media", headers=auth(clerk_token)
        )
        stats = await response.json()
        assert stats["publishing"] is True and stats["viewers"] == 1
        assert stats["video_codec"] == "video/h264"
        assert stats["frames"]["video"] >= 20 and stats["delivered"] >= 20
        anonymous = await client.get(f"/api/meetings/{live_meeting['id']}/media")
        assert anonymous.status == 401
    finally:
        await viewer.close()
        await publisher.close()


async def test_meeting_end_stops_the_fanout(client, clerk_token, live_meeting):
    publisher = Publisher(width=320, height=240)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        room = room_of(client, live_meeting)
        await client.post(f"/api/meetings/{live_meeting['id']}/end", headers=auth(clerk_token))
        assert all(f._task.done() for f in room.fanouts.values())
    finally:
        await publisher.close()


async def test_lost_packets_are_retransmitted_on_nack(client, clerk_token, live_meeting):
    """Drop every 20th video packet to one viewer: its NACKs repair every frame."""
    publisher, viewer = Publisher(width=320, height=240), Viewer(decode=False)
    room = room_of(client, live_meeting)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await viewer.watch(client, live_meeting["id"])
        await viewer.wait_for(video=10, timeout=15)
        forwarder = server_tracks(room)[0]._forwarder
        counts = {"sent": 0, "lost": 0, "resent": 0}
        real_path, real_retransmit = forwarder._path, forwarder._sender._retransmit

        def lossy_path():
            path = real_path()
            if path is None:
                return None
            protect, send, backlog = path

            def lossy_send(data):
                counts["sent"] += 1
                if counts["sent"] % 20 == 0:
                    counts["lost"] += 1
                    return
                send(data)

            return protect, lossy_send, backlog

        async def counted_retransmit(seq):
            counts["resent"] += 1
            forwarder._path = real_path  # retransmissions themselves get through
            try:
                await real_retransmit(seq)
            finally:
                forwarder._path = lossy_path

        forwarder._path = lossy_path
        forwarder._sender._retransmit = counted_retransmit
        before, sent_before = viewer.video_frames, room.fanouts["video"].frames
        await asyncio.sleep(4)
        forwarder._path = real_path
        await asyncio.sleep(0.5)
        received = viewer.video_frames - before
        sent = room.fanouts["video"].frames - sent_before
        assert counts["lost"] >= 5 and counts["resent"] >= counts["lost"] * 0.8, counts
        assert received >= 0.97 * sent, (received, sent, counts)
    finally:
        await viewer.close()
        await publisher.close()
