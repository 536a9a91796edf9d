"""A publisher's video starts afresh after a silence (its network dropped, then came back).

aiortc's video receiver reassembles frames in a jitter buffer of 512 packets that hands
out nothing while the packet at its head is missing. Packets lost when the sender's
network went down are never retransmitted (they are older than the sender's history),
so after the network returns the picture stays frozen until 512 more packets have
arrived: seconds, at the low bitrate a sender restarts with. Measured with a 10 s link
cut: 5-7 s without video while the sound was back at once.

After a silence of ``gap`` seconds in which packets were lost (the sequence numbers
jump; a pause with nothing lost, as from a slow sender, is left alone) the buffer
forgets what it held, drops the rest of the frame it resumes in (its first packets may
be lost), and asks the sender for a keyframe (aiortc sends the PLI): the picture is
back within a frame or two. Packets older than the buffer's start are dropped: aiortc
would start over at one 100 or more behind, and the sender retransmits (on aiortc's
NACKs) what it sent into the outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

logger = logging.getLogger(__name__)

#: seconds without a video packet after which the receiver starts afresh, when packets
#: were lost meanwhile (the sequence numbers jump): the sender's network went down
GAP_SECONDS = 0.5
#: ... and after this long a silence even without a jump (a sender that stopped numbering)
LONG_SILENCE = 3.0
_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_STREAMS = "_RTCRtpReceiver__remote_streams"


#: RTP clock of every video codec
VIDEO_CLOCK = 90000


def _ahead(seq: int, of: int) -> bool:
    """RTP sequence number ``seq`` comes after ``of`` (modulo 2**16)."""
    return 0 < uint16_add(seq, -of) < 0x8000


def _not_before(timestamp: int, of: int) -> bool:
    """RTP timestamp ``timestamp`` is ``of`` or later (modulo 2**32)."""
    return (timestamp - of) & 0xFFFFFFFF < 0x80000000


class _FreshAfterGap(JitterBuffer):
    def __init__(self, capacity: int, gap: float, after_gap: Callable[[], None]) -> None:
        super().__init__(capacity, is_video=True)
        self._gap = gap
        self._after_gap = after_gap
        self._last = 0.0
        self._newest: int | None = None  # the newest sequence number seen
        self._newest_timestamp = 0
        #: after a gap: packets shot before this RTP timestamp are stale (what the
        #: sender sent into the outage, resent on aiortc's NACKs), newer ones are fresh
        self._fresh_from: int | None = None
        self._skip: int | None = None  # the RTP timestamp of the frame resumed in
        self.restarts = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        now = time.monotonic()
        last, self._last = self._last, now
        seq = packet.sequence_number
        newest = self._newest
        newest_timestamp = self._newest_timestamp
        if newest is None or _ahead(seq, newest):
            self._newest, self._newest_timestamp = seq, packet.timestamp
        silence = now - last if last else 0.0
        # a pause with nothing lost (a slow sender, a stall on a healthy link) is no outage
        lost = newest is not None and _ahead(seq, newest) and uint16_add(seq, -newest) > 1
        if silence > self._gap and self._origin is not None and (lost or silence > LONG_SILENCE):
            self.remove(self.capacity)
            self._origin = None
            ticks = int((silence - self._gap) * VIDEO_CLOCK)
            self._fresh_from = (newest_timestamp + ticks) & 0xFFFFFFFF
            self._skip = None
            self.restarts += 1
            logger.info("video resumes after %.1f s without packets: starting afresh", now - last)
            self._after_gap()
            self._resume(packet)
            return True, None  # True: aiortc asks the sender for a keyframe
        if self._origin is None and (self._fresh_from is not None or self._skip is not None):
            return self._resume(packet)
        if self._origin is not None:
            ahead = uint16_add(seq, -self._origin)
            behind = uint16_add(self._origin, -seq)
            if behind < ahead:
                # Older than what the buffer waits for: too late. (aiortc would start
                # over at it when it is 100 or more behind, and then wait for 512
                # packets: the sender retransmits, on request, what it "sent" while
                # its network was down.)
                return False, None
        return super().add(packet)

    def _resume(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """After a gap: drop stale packets and the frame resumed in; start at the next."""
        fresh_from = self._fresh_from
        if fresh_from is not None and not _not_before(packet.timestamp, fresh_from):
            return False, None  # what the sender sent into the outage, resent
        if self._skip is None:
            self._skip = packet.timestamp  # the frame resumed in: its first packets may be lost
            return False, None
        if packet.timestamp == self._skip:
            return False, None
        self._fresh_from = self._skip = None
        return super().add(packet)


def _forget(receiver: Any) -> None:
    """The outage is over: its loss and silence must not set the sender's bitrate.

    aiortc's receiver reports the packets lost in the outage (RTCP fraction lost) and
    estimates the bandwidth from the trickle of packets right after it (REMB): the
    sender would drop to its minimum bitrate (30 kbit/s) and take half a minute to climb
    back. Start both afresh, as for a new sender.
    """
    if getattr(receiver, _ESTIMATOR, None) is not None:
        setattr(receiver, _ESTIMATOR, RemoteBitrateEstimator())
    for stats in (getattr(receiver, _STREAMS, None) or {}).values():
        stats._expected_prior = stats.packets_expected
        stats._received_prior = stats.packets_received


def fresh_after_gaps(pc: Any, track: Any, gap: float = GAP_SECONDS) -> bool:
    """Make the video receiver of ``track`` (a remote track of ``pc``) start afresh after gaps.

    Call it from the peer connection's ``track`` event. False (and a warning) if aiortc
    no longer keeps its jitter buffer where this expects it.
    """
    if track.kind != "video":
        return False
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if receiver is None or receiver.track is not track:
            continue
        current = getattr(receiver, _ATTRIBUTE, None)
        if not isinstance(current, JitterBuffer):
            break
        setattr(
            receiver, _ATTRIBUTE, _FreshAfterGap(current.capacity, gap, partial(_forget, receiver))
        )
        logger.debug("gap hook attached to %r", receiver)
        return True
    logger.warning("cannot attach the gap hook to %r: aiortc changed", track)
    return False
