"""The floor speaker's voice, forwarded encoded to every viewer and to the hall.

Real aiortc peers on loopback: the hall's camera publishes over WHIP with the
committee's token; a villager who holds the floor publishes their microphone
over WHIP with their member token; viewers whose offer carries a second audio
m-line hear them there, and the host page (audio and video offered inactive)
hears only them. Nobody renegotiates when the speaker changes or stops.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

from media.encoded import EncodedFrame
from media.switchable import SwitchableTrack
from server.keys import MEDIA

from .support.api import auth, error_code, new_member
from .support.floor import HOST, VIEWER, Listener, Speaker, give_floor
from .support.peers import (
    NO_ICE_SERVERS,
    SDP,
    MovingVideoTrack,
    Publisher,
    gathered_offer,
    until,
)

# ---------------------------------------------------------------- helpers


def directions(answer: str) -> list[tuple[str, str]]:
    parsed = SessionDescription.parse(answer)
    return [(m.kind, "inactive" if m.port == 0 else m.direction) for m in parsed.media]


# ---------------------------------------------------------------- the voice path


async def test_floor_voice_reaches_viewers_and_the_hall_and_stops_at_once(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    events = []
    hub.add_listener(events.append)
    first_id, first_token = await new_member(client, clerk_token, "王五")
    second_id, second_token = await new_member(client, clerk_token, "赵六")
    hall = Publisher(width=160, height=120)
    viewer, host = Listener(VIEWER), Listener(HOST)
    first, second = Speaker(), Speaker()
    try:
        await hall.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await host.watch(client, meeting_id, clerk_token)
        assert directions(viewer.answer) == [
            ("audio", "sendonly"),
            ("video", "sendonly"),
            ("audio", "sendonly"),
        ]
        # the host page: no forwarding at all on the m-lines it offered inactive
        assert directions(host.answer) == [
            ("audio", "inactive"),
            ("video", "inactive"),
            ("audio", "sendonly"),
        ]
        await until(
            lambda: viewer.frames[0] >= 10 and viewer.frames[1] >= 10,
            f"main audio and video reach the viewer: {viewer.frames}",
        )
        # nobody holds the floor: the floor m-lines receive nothing
        assert viewer.frames[2] == 0 and host.frames == [0, 0, 0]

        await give_floor(client, meeting_id, first_id)
        await first.publish(client, meeting_id, first_token)
        assert directions(first.answer) == [("audio", "recvonly")]
        # on the air with the voice's first frame, not with the offer
        await until(lambda: hub.stats(str(meeting_id)).floor_publishing, "the floor is on the air")
        assert events[-1].floor_publishing is True
        await until(
            lambda: viewer.frames[2] >= 25 and host.frames[2] >= 25,
            f"the floor voice reaches viewer {viewer.frames} and hall {host.frames}",
        )
        assert host.frames[:2] == [0, 0]
        room = hub.room(str(meeting_id))
        assert room.fanouts["floor"].frames >= 25

        # the chair takes the floor back: forwarding stops at once ...
        stopped_at = time.monotonic()
        assert await hub.stop_floor(str(meeting_id)) is True
        forwarded = room.fanouts["floor"].frames
        assert hub.stats(str(meeting_id)).floor_publishing is False
        assert events[-1].floor_publishing is False
        assert await hub.stop_floor(str(meeting_id)) is False  # idempotent
        await asyncio.sleep(0.3)  # what was already on the wire
        floor_then, hall_then, video_then = viewer.frames[2], host.frames[2], viewer.frames[1]
        await asyncio.sleep(1.0)
        assert viewer.frames[2] == floor_then and host.frames[2] == hall_then
        assert room.fanouts["floor"].frames == forwarded  # not one frame after stop_floor
        assert viewer.frames[1] >= video_then + 10  # ... and the meeting goes on
        await until(
            lambda: (
                first.pc.connectionState == "closed"
                or first.pc.iceConnectionState in ("closed", "failed")
                or first.pc.connectionState == "failed"
            ),
            "the first speaker's peer connection was hung up",
            timeout=5,
        )
        response = await client.delete(first.location, headers=auth(first_token))
        assert response.status == 404  # already gone

        # the next speaker flows on the same m-line, nobody renegotiates
        await give_floor(client, meeting_id, second_id)
        second_started = time.monotonic()
        await second.publish(client, meeting_id, second_token)
        await until(
            lambda: viewer.frames[2] >= floor_then + 25 and host.frames[2] >= hall_then + 25,
            f"the second speaker is heard: viewer {viewer.frames}, hall {host.frames}",
        )
        heard = time.monotonic()
        for listener in (viewer, host):
            assert listener.pc.signalingState == "stable"
            assert len(listener.pc.getTransceivers()) == 3
        # one SSRC on the viewer's floor m-line throughout; its timestamps go on
        # increasing, and jump once by about the time nobody spoke. (aiortc's
        # receiver holds 4 audio frames back, so arrival times cannot show where
        # the silence was: bound it by the moments the floor stopped and restarted.)
        assert len(viewer.ssrcs(2)) == 1
        stamps = [pts for _, pts in viewer.arrivals[2]]
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        assert min(steps) > 0, "the floor m-line's timestamps went back"
        silence = max(steps) / 48000
        assert second_started - stopped_at - 0.1 < silence < heard - stopped_at + 0.1, (
            second_started - stopped_at,
            silence,
            heard - stopped_at,
        )
        assert sorted(steps)[-2] < 0.2 * 48000  # the only jump is the silence
        assert viewer.frames[1] > video_then
    finally:
        for peer in (viewer, host, first, second, hall):
            await peer.close()


async def test_floor_offer_rules_and_who_may_publish(client, clerk_token, live_meeting):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    holder_id, holder_token = await new_member(client, clerk_token, "孙七")
    _, other_token = await new_member(client, clerk_token, "周八")
    speaker, other, camera = Speaker(), Speaker(), Speaker(camera=True)
    try:
        # nobody holds the floor yet: a member may not publish
        response = await speaker.post(client, meeting_id, holder_token)
        assert response.status == 403 and await error_code(response) == "forbidden"
        await give_floor(client, meeting_id, holder_id)
        # another member of the village does not hold it either
        response = await other.post(client, meeting_id, other_token)
        assert response.status == 403 and await error_code(response) == "forbidden"

        # the holder's offer must send audio
        video_only = RTCPeerConnection(NO_ICE_SERVERS)
        video_only.addTransceiver(MovingVideoTrack(160, 120), direction="sendonly")
        try:
            response = await client.post(
                f"/whip/{meeting_id}",
                data=await gathered_offer(video_only),
                headers={**SDP, **auth(holder_token)},
            )
        finally:
            await video_only.close()
        assert response.status == 400 and await error_code(response) == "bad_request"
        assert "audio" in (await response.json())["error"]["message"]
        assert hub.stats(str(meeting_id)).floor_publishing is False

        # a camera next to the microphone is declined in the answer, not received
        await camera.publish(client, meeting_id, holder_token)
        assert directions(camera.answer) == [("audio", "recvonly"), ("video", "inactive")]
        room = hub.room(str(meeting_id))
        await until(lambda: room.floor is not None, "the floor is on the air")
        assert room.floor.role == "floor" and room.publisher is None

        # the floor speaker's session answers their own token, or the committee's
        response = await client.delete(camera.location, headers=auth(other_token))
        assert response.status == 403
        response = await client.delete(camera.location)
        assert response.status == 401
        fragment = "a=end-of-candidates\r\n"
        response = await client.patch(
            camera.location,
            data=fragment,
            headers={"Content-Type": "application/trickle-ice-sdpfrag", **auth(holder_token)},
        )
        assert response.status == 204
        response = await client.delete(camera.location, headers=auth(holder_token))
        assert response.status == 200
        assert hub.stats(str(meeting_id)).floor_publishing is False

        await speaker.publish(client, meeting_id, holder_token)
        response = await client.delete(speaker.location, headers=auth(clerk_token))
        assert response.status == 200
        assert room.floor is None

        # the floor taken back in the database: the member may not publish again
        await give_floor(client, meeting_id, None)
        response = await other.post(client, meeting_id, holder_token)
        assert response.status == 403
    finally:
        for peer in (speaker, other, camera):
            await peer.close()


async def test_floor_publish_in_flight_when_the_floor_is_stopped_is_refused(
    client, clerk_token, live_meeting
):
    """stop_floor during the negotiation: the late voice must not come back."""
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    speaker = Speaker()
    try:
        offer = await gathered_offer(speaker.pc)
        room = hub.room(str(meeting_id))
        publishing = asyncio.ensure_future(hub.publish_floor(str(meeting_id), offer))
        await asyncio.sleep(0)  # the negotiation has begun
        await hub.stop_floor(str(meeting_id))
        from media import FloorStopped

        try:
            await asyncio.wait_for(publishing, 10)
        except FloorStopped:
            pass
        else:
            raise AssertionError("a floor publish outlived stop_floor")
        assert room.floor is None and not room.floor_publishing
    finally:
        await speaker.close()


# ---------------------------------------------------------------- offers as browsers write them

FINGERPRINT = ":".join(["AB"] * 32)


def chromium_section(kind: str, mid: str, direction: str) -> str:
    """One m-section as Chromium writes it for ``addTransceiver(kind, {direction})``."""
    common = [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Qw3r",
        "a=ice-pwd:0123456789abcdefghijklmn",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {FINGERPRINT}",
        "a=setup:actpass",
        f"a=mid:{mid}",
    ]
    if kind == "audio":
        return "\r\n".join(
            [
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
                *common,
                "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
                f"a={direction}",
                "a=rtcp-mux",
                "a=rtcp-rsize",
                "a=rtpmap:111 opus/48000/2",
                "a=rtcp-fb:111 transport-cc",
                "a=fmtp:111 minptime=10;useinbandfec=1",
                "a=rtpmap:63 red/48000/2",
                "a=fmtp:63 111/111",
                "a=rtpmap:9 G722/8000",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:13 CN/8000",
                "a=rtpmap:110 telephone-event/48000",
                "a=rtpmap:126 telephone-event/8000",
            ]
        )
    return "\r\n".join(
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103",
            *common,
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            f"a={direction}",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            "a=rtpmap:96 VP8/90000",
            "a=rtcp-fb:96 goog-remb",
            "a=rtcp-fb:96 transport-cc",
            "a=rtcp-fb:96 ccm fir",
            "a=rtcp-fb:96 nack",
            "a=rtcp-fb:96 nack pli",
            "a=rtpmap:97 rtx/90000",
            "a=fmtp:97 apt=96",
            "a=rtpmap:102 H264/90000",
            "a=rtcp-fb:102 nack",
            "a=rtcp-fb:102 nack pli",
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=rtpmap:103 rtx/90000",
            "a=fmtp:103 apt=102",
        ]
    )


def chromium_offer(lines) -> str:
    sections = [chromium_section(kind, str(i), d) for i, (kind, d) in enumerate(lines)]
    head = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(str(i) for i in range(len(lines))),
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
    ]
    return "\r\n".join(head + sections) + "\r\n"


async def test_chromium_shaped_offers_map_their_mlines(client, live_meeting):
    """The host page's and a viewer's offers as Chromium writes them (trickled, no candidates)."""
    meeting_id = live_meeting["id"]
    room = client.app[MEDIA].room(str(meeting_id))
    for lines, expected, feeds in (
        (
            HOST,
            [("audio", "inactive"), ("video", "inactive"), ("audio", "sendonly")],
            {"audio": 0, "video": 0, "floor": 1},
        ),
        (
            VIEWER,
            [("audio", "sendonly"), ("video", "sendonly"), ("audio", "sendonly")],
            {"audio": 1, "video": 1, "floor": 1},
        ),
        (
            VIEWER[:2],
            [("audio", "sendonly"), ("video", "sendonly")],
            {"audio": 1, "video": 1, "floor": 0},
        ),
    ):
        response = await client.post(f"/whep/{meeting_id}", data=chromium_offer(lines), headers=SDP)
        assert response.status == 201, await response.text()
        assert directions(await response.text()) == expected
        assert {name: len(f.viewers) for name, f in room.fanouts.items()} == feeds
        response = await client.delete(response.headers["Location"])
        assert response.status == 200
    # every m-line inactive: nothing to watch
    response = await client.post(f"/whep/{meeting_id}", data=chromium_offer(HOST[:2]), headers=SDP)
    assert response.status == 400


# ---------------------------------------------------------------- timestamps across speakers


async def test_switching_source_keeps_timestamps_increasing_by_the_silence():
    """A new speaker after a pause: timestamps jump by the pause, never back."""

    class Frames:
        kind = "audio"
        readyState = "live"

        def __init__(self, start: int) -> None:
            self.pts = start

        async def recv(self):
            frame = EncodedFrame(
                "audio", "audio/opus", b"\xfc", self.pts, fractions.Fraction(1, 48000), True
            )
            self.pts += 960
            return frame

    track = SwitchableTrack("audio")
    track.set_source(Frames(start=5_000_000))
    seen = [(await track.recv()).pts for _ in range(3)]
    assert seen == [5_000_000, 5_000_960, 5_001_920]
    track.set_source(Frames(start=0))  # another phone, its own clock
    await asyncio.sleep(0.2)
    after = (await track.recv()).pts
    assert 5_001_920 + 0.15 * 48000 < after < 5_001_920 + 0.5 * 48000
    assert (await track.recv()).pts == after + 960
    track.stop()
