"""The pieces of issue 16's host drop that need no network (the real cut: test_host_drop_browser).

HostAway: host:away to the room, host:away_long to the committee after the grace (and
again while the host stays away), host:back, nothing once the meeting ended. The video
receiver's gap hook: after an outage the picture resumes at the next fresh frame, and
what the sender resends from the outage cannot freeze it.
"""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCPeerConnection
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RtpPacket

from media.aiortc_hooks.gaps import _FreshAfterGap, fresh_after_gaps
from server.host_away import HostAway


async def test_the_room_hears_the_host_go_and_come_back_and_the_committee_is_asked():
    sent: list[tuple[str, dict, int, bool]] = []

    async def emit(event: str, payload: dict, meeting_id: int, committee: bool) -> None:
        sent.append((event, payload, meeting_id, committee))

    away = HostAway(emit, grace=0.1)
    away.update(7, False)  # nobody was away: nothing to say
    away.update(7, True)
    away.update(7, True)  # still away: said once
    await asyncio.sleep(0.02)
    assert [(e, m, c) for e, _, m, c in sent] == [("host:away", 7, False)]
    assert sent[0][1]["grace_s"] == 0.1 and sent[0][1]["since"]
    assert away.state(7) == {"since": sent[0][1]["since"], "grace_s": 0.1, "asked": False}
    await asyncio.sleep(0.25)  # the grace ran out (twice): the committee is asked, again
    asked = [s for s in sent if s[0] == "host:away_long"]
    assert len(asked) >= 2 and all(committee for *_, committee in asked)
    assert away.state(7)["asked"]
    away.update(7, False)
    await asyncio.sleep(0.02)
    assert sent[-1][:1] == ("host:back",) and away.state(7) is None
    count = len(sent)
    away.update(8, True)
    away.forget(8)  # the meeting ended: no prompt later
    await asyncio.sleep(0.2)
    assert [e for e, *_ in sent[count:]] == ["host:away"]
    away.close()


def packet(seq: int, timestamp: int, marker: int = 0) -> RtpPacket:
    made = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=marker)
    made._data = b"x"  # type: ignore[attr-defined]  # what aiortc's depayloader sets
    return made


def frames(buffer: _FreshAfterGap, packets: list[RtpPacket]) -> int:
    return sum(1 for p in packets if buffer.add(p)[1] is not None)


def test_video_resumes_after_a_gap_whatever_the_sender_resends():
    forgotten: list[int] = []
    buffer = _FreshAfterGap(512, 0.05, lambda: forgotten.append(1))
    step = 4500  # 20 frames a second at 90 kHz
    before = [packet(100 + i, 1000 + i * step, 1) for i in range(10)]
    assert frames(buffer, before) == 9  # each frame is handed out when the next begins
    time.sleep(0.2)  # the network is down; the sender keeps numbering packets
    fresh_at = 1000 + 10 * step + int(0.2 * 90000)
    first = buffer.add(packet(160, fresh_at, 1))
    assert first == (True, None)  # a keyframe is asked for at once
    assert forgotten == [1]  # and the outage's loss is not reported
    # what the sender resends on NACKs (shot in the outage), mixed with fresh frames
    mixed = []
    for i in range(10):
        mixed.append(packet(161 + i, fresh_at + (i + 1) * step, 1))
        mixed.append(packet(111 + i, 1000 + (10 + i) * step, 1))
    assert frames(buffer, mixed) == 9
    assert buffer.restarts == 1


async def test_the_gap_hook_still_attaches_to_aiortcs_video_receiver():
    """aiortc is pinned; an upgrade that moves the jitter buffer must fail here, loudly."""
    pc = RTCPeerConnection()
    try:
        tracks = {}
        for kind in ("video", "audio"):
            receiver = pc.addTransceiver(kind, direction="recvonly").receiver
            # what setRemoteDescription would make: the remote track of the receiver
            receiver._track = tracks[kind] = RemoteStreamTrack(kind=kind)
        assert fresh_after_gaps(pc, tracks["video"])
        assert not fresh_after_gaps(pc, tracks["audio"])  # sound keeps aiortc's own
    finally:
        await pc.close()


def test_a_pause_with_nothing_lost_is_no_outage():
    """A slow sender (1.5 frames a second) or a stall on a healthy link loses no frame."""
    forgotten: list[int] = []
    buffer = _FreshAfterGap(512, 0.05, lambda: forgotten.append(1))
    step = 60000  # 1.5 frames a second at 90 kHz
    handed = 0
    for i in range(6):
        handed += frames(buffer, [packet(200 + i, 1000 + i * step, 1)])
        time.sleep(0.08)  # longer than the gap, but every sequence number arrives
    assert handed == 5 and buffer.restarts == 0 and forgotten == []
