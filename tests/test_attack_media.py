"""Hostile and broken media clients (issue 12, items 2, 5 and 11), with real aiortc peers.

- A publisher (main or floor) that negotiates but never delivers a frame must
  never take the meeting's media down: the newest publisher that *delivers*
  wins, a dead one is dropped on ICE failure or after MEDIA_CONNECT_TIMEOUT.
- Sessions that never connect are bounded per client address and in total
  (429 / 503 with Retry-After), and are closed after the timeout, so an
  anonymous offer flood cannot use up the process's descriptors.
- Oversized SDP (candidates, m-lines, attribute lines) is refused with 400
  before aiortc parses it; the same for trickle-ICE PATCH fragments.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media.sdp import MAX_CANDIDATES, MAX_LINE_LENGTH, MAX_MEDIA_LINES
from server.keys import MEDIA
from server.settings import Settings

from .support.api import auth, error_code, new_member, server_env
from .support.floor import HOST, VIEWER, Listener, Speaker, give_floor
from .support.peers import NO_ICE_SERVERS, Publisher, Viewer, closing, gathered_offer, until
from .support.peers import viewer_offer as connectable_viewer_offer
from .support.recording import wait_recording

SDP = {"Content-Type": "application/sdp"}
SDPFRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}
TIMEOUT = 3.0  # MEDIA_CONNECT_TIMEOUT in these tests
PER_ADDRESS, TOTAL = 4, 24


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            **server_env(tmp_path),
            "MEDIA_CONNECT_TIMEOUT": str(TIMEOUT),
            "MEDIA_PENDING_PER_ADDRESS": str(PER_ADDRESS),
            "MEDIA_PENDING_TOTAL": str(TOTAL),
            # the flood comes "from" many addresses through a trusted proxy
            "TRUSTED_PROXIES": "127.0.0.1",
        }
    )


def without_candidates(sdp: str) -> str:
    """The offer of a phone that lost its network right after sending it."""
    return "".join(
        line + "\r\n"
        for line in sdp.splitlines()
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


async def dead_offer(peer) -> str:
    """An offer from ``peer`` whose ICE can never complete (no candidates; ``peer`` is closed)."""
    offer = without_candidates(await gathered_offer(peer.pc))
    await peer.close()
    return offer


def session_id(location: str) -> str:
    return location.rsplit("/", 1)[1]


async def publish_dead(client, meeting_id, token, peer) -> str:
    """WHIP-publish ``peer``'s offer, which can never connect: the server's session id."""
    response = await client.post(
        f"/whip/{meeting_id}", data=await dead_offer(peer), headers={**SDP, **auth(token)}
    )
    assert response.status == 201, await response.text()
    return session_id(response.headers["Location"])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_sockets() -> int:
    """Descriptors that are sockets (the database pool's files are not)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


# ---------------------------------------------------------------- item 2: dead publishers


async def test_a_publisher_whose_ice_never_completes_does_not_block_the_next(
    client, clerk_token, live_meeting
):
    """The host's phone drops right after its offer; the laptop that publishes next is seen."""
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    good, viewer = Publisher(width=320, height=240), Viewer(decode=False)
    try:
        dead = await publish_dead(client, meeting_id, clerk_token, Publisher())
        await viewer.watch(client, meeting_id)

        await good.publish(client, meeting_id, clerk_token)
        await viewer.wait_for(video=20, audio=10, timeout=15)
        room = hub.room(str(meeting_id))
        assert room.publisher.id == session_id(good.location)
        # the recording follows the live source
        recording = await wait_recording(
            client, clerk_token, meeting_id, lambda r: r["started_at"], timeout=15
        )
        assert recording["status"] == "recording"

        # the dead session is dropped after MEDIA_CONNECT_TIMEOUT ...
        await until(
            lambda: room.session(dead) is None or room.session(dead).closed,
            "the dead publisher was closed",
            timeout=TIMEOUT + 5,
        )
        response = await client.delete(f"/whip/{meeting_id}/{dead}", headers=auth(clerk_token))
        assert response.status == 404
        # ... and the good one goes on
        before = viewer.video_frames
        await viewer.wait_for(video=before + 20, timeout=10)
        assert room.publisher.id == session_id(good.location)
    finally:
        await viewer.close()
        await good.close()


async def test_a_dead_first_publisher_alone_is_dropped_and_the_room_is_not_publishing(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    dead = await publish_dead(client, meeting_id, clerk_token, Publisher(codec="video/VP8"))
    room = hub.room(str(meeting_id))
    assert not room.publishing  # negotiated is not publishing: nothing was delivered
    await until(
        lambda: room.session(dead) is None, "the dead publisher was dropped", timeout=TIMEOUT + 5
    )
    assert not room.publishing
    # nor does it leave its codec pinned for the next publisher
    good, viewer = Publisher(codec="video/H264", width=160, height=120), Viewer(decode=False)
    async with closing(good, viewer):
        await good.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await viewer.wait_for(video=10, timeout=15)
        assert room.video_codec == "video/h264" and room.publishing


async def test_a_new_publisher_that_never_delivers_leaves_the_live_one_serving(
    client, clerk_token, live_meeting
):
    """A second publisher connects (ICE and DTLS up) but sends no frame: the first keeps serving."""
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    first, viewer = Publisher(width=320, height=240), Viewer(decode=True)
    silent = RTCPeerConnection(NO_ICE_SERVERS)
    silent.addTransceiver("video", direction="sendonly")  # no track: not one frame
    silent.addTransceiver("audio", direction="sendonly")
    try:
        await first.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await viewer.wait_for(video=20, timeout=15)
        room = hub.room(str(meeting_id))
        first_id = session_id(first.location)

        response = await client.post(
            f"/whip/{meeting_id}",
            data=await gathered_offer(silent),
            headers={**SDP, **auth(clerk_token)},
        )
        assert response.status == 201, await response.text()
        silent_id = session_id(response.headers["Location"])
        await silent.setRemoteDescription(
            RTCSessionDescription(sdp=await response.text(), type="answer")
        )
        await until(lambda: silent.connectionState == "connected", "the silent one connects")
        assert room.stats()["publishers_on_trial"] == 1

        # while it is connected and silent, the viewer keeps getting the first camera
        before = viewer.video_frames
        await viewer.wait_for(video=before + 20, timeout=10)
        assert room.publisher.id == first_id
        assert viewer.sizes == {(320, 240)}

        # it is dropped after MEDIA_CONNECT_TIMEOUT; the first never stopped
        await until(
            lambda: room.session(silent_id) is None,
            "the silent publisher was dropped",
            timeout=TIMEOUT + 5,
        )
        assert room.stats()["publishers_on_trial"] == 0
        before = viewer.video_frames
        await viewer.wait_for(video=before + 20, timeout=10)
        assert room.publisher.id == first_id and first.pc.connectionState == "connected"
    finally:
        await viewer.close()
        await first.close()
        await silent.close()


async def test_a_dead_floor_speaker_does_not_silence_the_floor(client, clerk_token, live_meeting):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    member_id, member_token = await new_member(client, clerk_token, "王五")
    hall, viewer, host = Publisher(width=160, height=120), Listener(VIEWER), Listener(HOST)
    speaker = Speaker()
    try:
        await hall.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await host.watch(client, meeting_id, clerk_token)
        await give_floor(client, meeting_id, member_id)

        # the villager's phone sends its offer and drops off the network
        dead = await publish_dead(client, meeting_id, member_token, Speaker())

        # it tries again (or the floor passes on): the new voice is heard
        await speaker.publish(client, meeting_id, member_token)
        await until(
            lambda: viewer.frames[2] >= 25 and host.frames[2] >= 25,
            f"the floor is heard: viewer {viewer.frames}, hall {host.frames}",
        )
        room = hub.room(str(meeting_id))
        assert room.floor.id == session_id(speaker.location)
        await until(
            lambda: room.session(dead) is None,
            "the dead floor session was dropped",
            timeout=TIMEOUT + 5,
        )
        heard = viewer.frames[2]
        await until(lambda: viewer.frames[2] >= heard + 25, "the floor is still heard")
        assert viewer.frames[1] > 0  # and the hall's camera all along
    finally:
        for peer in (viewer, host, speaker, hall):
            await peer.close()


# ---------------------------------------------------------------- item 5: offers that never connect


async def viewer_offer() -> str:
    """A WHEP offer (audio + video) from a phone that will never connect."""
    return without_candidates(await connectable_viewer_offer())


async def healthz_latency(client) -> float:
    started = time.monotonic()
    response = await client.get("/healthz")
    assert response.status == 200
    return time.monotonic() - started


async def test_anonymous_offer_flood_is_bounded_and_the_meeting_goes_on(
    client, clerk_token, live_meeting
):
    """300 anonymous WHEP offers that never connect, from one address, then from many."""
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    publisher, viewer = Publisher(width=160, height=120), Viewer(decode=True)
    reconnected = Publisher(width=320, height=240)
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await viewer.wait_for(video=20, timeout=15)
        await until(lambda: len(hub.pending) == 0, "the viewer and publisher are connected")
        offer = await viewer_offer()
        fds_before, sockets_before = open_fds(), open_sockets()
        frames_before = viewer.video_frames
        statuses: dict[int, int] = {}
        latencies: list[float] = []
        peak_fds = 0

        async def offer_from(address: str):
            headers = {**SDP, "X-Forwarded-For": address, "Connection": "close"}
            response = await client.post(f"/whep/{meeting_id}", data=offer, headers=headers)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status != 201:
                assert response.headers["Retry-After"].isdigit()
                assert 1 <= int(response.headers["Retry-After"]) <= TIMEOUT + 1
                code = await error_code(response)
                assert code == {429: "rate_limited", 503: "busy"}[response.status], code
            response.release()

        async def flood(addresses: list[str]) -> None:
            nonlocal peak_fds
            for start in range(0, len(addresses), 20):
                batch = [offer_from(a) for a in addresses[start : start + 20]]
                latency = asyncio.ensure_future(healthz_latency(client))
                await asyncio.gather(*batch)
                latencies.append(await latency)
                peak_fds = max(peak_fds, open_fds())

        started = time.monotonic()
        await flood(["198.51.100.7"] * 20)  # one address: its own limit
        assert statuses == {201: PER_ADDRESS, 429: 20 - PER_ADDRESS}, statuses
        others = [f"203.0.113.{i % 56 + 1}" for i in range(280)]  # many: the total
        await flood(others)
        flood_took = time.monotonic() - started
        assert statuses[201] == TOTAL, statuses
        assert statuses[429] >= 20 - PER_ADDRESS and statuses[503] >= 200, statuses
        assert sum(statuses.values()) == 300
        assert len(hub.pending) == TOTAL

        # the hall's camera is never kept off the air by a full house of pending viewers
        await reconnected.publish(client, meeting_id, clerk_token)
        await until(lambda: (320, 240) in viewer.sizes, "the reconnected camera is seen")

        # descriptors stay bounded: TOTAL sessions' sockets, not 300 (and the
        # database pool's files, which grow with concurrent requests, to its size)
        print(
            f"flood of 300 offers in {flood_took:.1f} s: fds {fds_before} -> peak {peak_fds}, "
            f"/healthz max {max(latencies):.3f} s"
        )
        assert peak_fds - fds_before <= TOTAL * 4 + 30
        # the meeting went on during the flood
        assert viewer.video_frames >= frames_before + 10
        assert max(latencies) < 2.0, latencies

        # after MEDIA_CONNECT_TIMEOUT every pending session is closed and its sockets freed
        await until(
            lambda: len(hub.pending) == 0, "the pending sessions were closed", timeout=TIMEOUT + 5
        )
        assert hub.stats(str(meeting_id)).viewers == 1
        await until(
            lambda: open_sockets() <= sockets_before + 4,
            f"sockets freed ({sockets_before} before, {open_sockets()} now)",
        )
        # and the flooding address may watch again
        response = await client.post(
            f"/whep/{meeting_id}", data=offer, headers={**SDP, "X-Forwarded-For": "198.51.100.7"}
        )
        assert response.status == 201
        before = viewer.video_frames
        await viewer.wait_for(video=before + 10, timeout=10)
    finally:
        await viewer.close()
        await publisher.close()
        await reconnected.close()


# ---------------------------------------------------------------- item 11: oversized SDP


def with_candidates(offer: str, count: int) -> str:
    """``offer`` with ``count`` made-up loopback host candidates in its first m-section."""
    lines = offer.rstrip("\r\n").split("\r\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("a=mid:"))
    extra = [
        f"a=candidate:{n} 1 udp 2130706431 127.0.0.1 {20000 + n} typ host" for n in range(count)
    ]
    return "\r\n".join(lines[: first + 1] + extra + lines[first + 1 :]) + "\r\n"


def with_media_lines(offer: str, count: int) -> str:
    """``offer`` with its video m-section repeated until it has ``count`` m-lines."""
    head, *sections = offer.split("m=")
    video = next(s for s in sections if s.startswith("video"))
    sections += [video.replace("a=mid:", f"a=mid:x{n}") for n in range(count - len(sections))]
    return head + "".join("m=" + s for s in sections)


def with_attribute(offer: str, size: int) -> str:
    return offer.rstrip("\r\n") + "\r\na=x-junk:" + "A" * size + "\r\n"


async def test_oversized_offers_are_400_before_parsing_and_the_meeting_goes_on(
    client, clerk_token, live_meeting
):
    meeting_id = live_meeting["id"]
    hub = client.app[MEDIA]
    publisher, viewer = Publisher(width=160, height=120), Viewer(decode=False)
    try:
        await publisher.publish(client, meeting_id, clerk_token)
        await viewer.watch(client, meeting_id)
        await viewer.wait_for(video=10, timeout=15)
        offer = await viewer_offer()
        frames_before = viewer.video_frames
        for body, reason in (
            (with_candidates(offer, 1000), "candidates"),
            (with_candidates(offer, MAX_CANDIDATES + 1), "candidates"),
            (with_media_lines(offer, 20), "m-lines"),
            (with_media_lines(offer, MAX_MEDIA_LINES + 1), "m-lines"),
            (with_attribute(offer, 10_000), "characters long"),
            (with_attribute(offer, MAX_LINE_LENGTH), "characters long"),
            (offer + "a=x\r\n" * 2000, "lines"),
            (
                offer.replace("a=mid:0", "a=mid:0\u2028a=candidate:1 1 udp 1 127.0.0.1 9 typ host"),
                "CRLF",
            ),
        ):
            started = time.monotonic()
            response = await client.post(f"/whep/{meeting_id}", data=body.encode(), headers=SDP)
            took = time.monotonic() - started
            assert response.status == 400, (reason, await response.text())
            assert await error_code(response) == "bad_request"
            assert reason in (await response.json())["error"]["message"]
            assert took < 1.0, (reason, took)
        # 100 KB: refused as too large before it is even read to the end
        response = await client.post(
            f"/whep/{meeting_id}", data=with_attribute(offer, 100_000), headers=SDP
        )
        assert response.status == 413 and await error_code(response) == "too_large"
        # WHIP: the same checks
        response = await client.post(
            f"/whip/{meeting_id}",
            data=with_candidates(offer, 1000),
            headers={**SDP, **auth(clerk_token)},
        )
        assert response.status == 400 and "candidates" in await response.text()
        # what a browser sends still works, at the limits
        response = await client.post(
            f"/whep/{meeting_id}", data=with_candidates(offer, MAX_CANDIDATES), headers=SDP
        )
        assert response.status == 201, await response.text()
        await client.delete(response.headers["Location"])
        assert hub.stats(str(meeting_id)).viewers == 1 and len(hub.pending) == 0
        await viewer.wait_for(video=frames_before + 10, timeout=10)
    finally:
        await viewer.close()
        await publisher.close()


async def test_oversized_trickle_fragments_are_400(client, live_meeting):
    meeting_id = live_meeting["id"]
    response = await client.post(f"/whep/{meeting_id}", data=await viewer_offer(), headers=SDP)
    assert response.status == 201
    location = response.headers["Location"]

    def fragment(candidates: int, first_port: int = 30000, mlines: int = 1) -> str:
        lines = ["a=ice-ufrag:" + ufrag]
        for m in range(mlines):
            lines += ["m=audio 9 UDP/TLS/RTP/SAVPF 111", f"a=mid:{m}"]
        lines += [
            f"a=candidate:{n} 1 udp 2130706431 127.0.0.1 {first_port + n} typ host"
            for n in range(candidates)
        ]
        return "\r\n".join(lines) + "\r\n"

    answer_session = client.app[MEDIA].session(str(meeting_id), session_id(location))
    ufrag = answer_session.offer.ice_ufrag
    for body, reason in (
        (fragment(1000), "candidates"),
        (fragment(1, mlines=20), "m-lines"),
        (fragment(1) + "a=x-junk:" + "A" * 10_000 + "\r\n", "characters long"),
        (fragment(1) + "a=x\r\n" * 2000, "lines"),
    ):
        response = await client.patch(location, data=body, headers=SDPFRAG)
        assert response.status == 400, (reason, await response.text())
        assert reason in (await response.json())["error"]["message"]
    response = await client.patch(location, data="a=x:" + "A" * 100_000, headers=SDPFRAG)
    assert response.status == 413
    # the candidates of one session add up: the offer's, then each fragment's
    half = MAX_CANDIDATES // 2
    response = await client.patch(location, data=fragment(half), headers=SDPFRAG)
    assert response.status == 204, await response.text()
    response = await client.patch(location, data=fragment(half, 31000), headers=SDPFRAG)
    assert response.status == 204, await response.text()
    response = await client.patch(location, data=fragment(1, 32000), headers=SDPFRAG)
    assert response.status == 400 and "per session" in await response.text()
    response = await client.delete(location)
    assert response.status == 200
