"""What each kind of WHEP offer gets (issue 15), and a viewer flapping between modes leaks nothing.

Real aiortc peers on loopback. An audio-only viewer (the watch page's "只听声音": the
meeting's sound and the floor speaker's voice) must get no video m-line and not one
video packet; a video-only offer gets the picture; an offer with more m-lines than
the server feeds gets a valid answer with those lines inactive. Every audio leg's
answer asks for, or announces, Opus in-band FEC. A viewer switching between sound
only and the picture fifty times leaves the server with the peer connections and
sockets it had before.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time

from aiortc import RTCPeerConnection

from server.keys import MEDIA

from .support.api import new_member
from .support.floor import SOUND_ONLY, Counted, Speaker, give_floor
from .support.peers import Publisher, until


def payload_types(media) -> set[int]:
    return {codec.payloadType for codec in media.rtp.codecs}


def opus_fmtp(sdp: str) -> list[str]:
    """The ``a=fmtp`` of every Opus payload type in ``sdp``."""
    opus = {
        line.split()[0].split(":")[1]
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:") and "opus/48000" in line.lower()
    }
    return [
        line
        for line in sdp.splitlines()
        if line.startswith("a=fmtp:") and line.split()[0].split(":")[1] in opus
    ]


async def test_audio_only_offer_gets_the_meeting_and_the_floor_and_not_one_video_packet(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    speaker_id, speaker_token = await new_member(client, clerk_token, "王五")
    publisher, speaker = Publisher(), Speaker()
    sound_only, both = Counted(SOUND_ONLY), Counted((("audio", "recvonly"), ("video", "recvonly")))
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await give_floor(client, meeting_id, speaker_id)
        await speaker.publish(client, meeting_id, speaker_token)
        await sound_only.watch(client, meeting_id)
        await both.watch(client, meeting_id)

        media = sound_only.answered()
        assert [m.kind for m in media] == ["audio", "audio"]  # no video m-line in the answer
        assert all(m.direction == "sendonly" for m in media)
        # the meeting's sound on the first line, the floor speaker's voice on the second
        await until(lambda: sound_only.frames[0] > 50 and sound_only.frames[1] > 50, "sound", 20)
        await until(lambda: both.frames[1] > 30, "the other viewer's picture", 20)
        audio_pts = set().union(*(payload_types(m) for m in media))
        assert sound_only.packets and set(sound_only.packets) <= audio_pts, sound_only.packets
        video_pts = payload_types(both.answered()[1])
        assert sum(both.packets.get(pt, 0) for pt in video_pts) > 30  # video was flowing
        stats = client.app[MEDIA].room_stats(str(meeting_id))
        assert stats["viewers"] == 2
        assert len(client.app[MEDIA].room(str(meeting_id)).fanouts["video"].viewers) == 1
    finally:
        for peer in (sound_only, both, speaker, publisher):
            await peer.close()


async def test_video_only_offer_gets_the_picture(client, clerk_token, live_meeting):
    publisher, viewer = Publisher(), Counted((("video", "recvonly"),))
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await viewer.watch(client, live_meeting["id"])
        media = viewer.answered()
        assert [(m.kind, m.direction) for m in media] == [("video", "sendonly")]
        await until(lambda: viewer.frames[0] > 20, "video frames", 20)
        assert set(viewer.packets) <= payload_types(media[0])
    finally:
        await viewer.close()
        await publisher.close()


async def test_extra_m_lines_get_a_valid_answer_with_the_extras_inactive(
    client, clerk_token, live_meeting
):
    lines = (("audio", "recvonly"), ("video", "recvonly"), ("audio", "recvonly"))
    lines += (("video", "recvonly"), ("video", "recvonly"), ("audio", "recvonly"))
    publisher, viewer = Publisher(), Counted(lines, data_channel=True)
    try:
        await publisher.publish(client, live_meeting["id"], clerk_token)
        await viewer.watch(client, live_meeting["id"])  # the viewer accepted the answer
        media = viewer.answered()
        assert [m.kind for m in media] == [k for k, _ in lines] + ["application"]
        directions = [m.direction for m in media[: len(lines)]]
        assert directions == ["sendonly"] * 3 + ["inactive"] * 3
        assert media[-1].port == 0  # no data channel: the application m-line is rejected
        await until(lambda: viewer.frames[0] > 20 and viewer.frames[1] > 20, "media", 20)
        await asyncio.sleep(1)
        assert viewer.frames[3:] == [0, 0, 0]
    finally:
        await viewer.close()
        await publisher.close()


async def test_every_audio_answer_asks_for_opus_in_band_fec(client, clerk_token, live_meeting):
    meeting_id = live_meeting["id"]
    speaker_id, speaker_token = await new_member(client, clerk_token, "赵六")
    publisher, speaker, viewer = Publisher(), Speaker(), Counted(SOUND_ONLY)
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        whip_answer = publisher.pc.remoteDescription.sdp
        await give_floor(client, meeting_id, speaker_id)
        await speaker.publish(client, meeting_id, speaker_token)
        await viewer.watch(client, meeting_id)
        for leg, answer in (
            ("WHIP", whip_answer),
            ("floor", speaker.answer),
            ("WHEP", viewer.answer),
        ):
            fmtp = opus_fmtp(answer)
            assert fmtp and all("useinbandfec=1" in f and "minptime=10" in f for f in fmtp), (
                leg,
                fmtp,
            )
    finally:
        for peer in (viewer, speaker, publisher):
            await peer.close()


def open_sockets() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if _target(fd).startswith("socket:"))


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def peer_connections() -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    )


async def test_a_viewer_flapping_between_sound_only_and_video_50_times_leaks_nothing(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    publisher = Publisher(width=160, height=120)
    current: Counted | None = None
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await until(lambda: hub.stats(str(meeting_id)).publishing, "publishing", 20)
        pcs, sockets = peer_connections(), open_sockets()
        for switch in range(50):
            lines = (
                SOUND_ONLY if switch % 2 == 0 else (("audio", "recvonly"), ("video", "recvonly"))
            )
            new = Counted(lines)
            await new.watch(client, meeting_id)
            await until(lambda n=new: n.pc.connectionState == "connected", "connected", 30)
            if current is not None:  # the page: POST the new session, then DELETE the old
                response = await client.delete(current.location)
                assert response.status == 200
                await current.close()
            current = new
            assert hub.stats(str(meeting_id)).viewers == 1
        await until(lambda: current.frames[0] > 5, "the last viewer's sound", 20)
        response = await client.delete(current.location)
        assert response.status == 200
        await current.close()
        current = None
        assert hub.stats(str(meeting_id)).viewers == 0
        room = hub.room(str(meeting_id))
        assert all(not fanout.viewers for fanout in room.fanouts.values())
        deadline = time.monotonic() + 30
        while peer_connections() > pcs or open_sockets() > sockets:
            assert time.monotonic() < deadline, (peer_connections(), pcs, open_sockets(), sockets)
            await asyncio.sleep(0.5)
    finally:
        if current is not None:
            await current.close()
        await publisher.close()
