"""Pieces of real aiortc peers shared by the bench's workers and the tests (``tests/support``).

The tests import this module as ``scripts.bench.peers``, the bench workers as ``bench.peers``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import numpy as np
from aiortc import RTCConfiguration, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

#: no STUN/TURN at all: aiortc would otherwise use a public STUN server
NO_ICE_SERVERS = RTCConfiguration(iceServers=[])


def prefer_codec(transceiver, mime: str) -> None:
    """Offer only the video codec ``mime`` (e.g. "video/VP8"), with its retransmissions."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in capabilities if c.mimeType.lower() in (mime.lower(), "video/rtx")]
    )


def tone(first: int, count: int, rate: int) -> np.ndarray:
    """Samples ``first`` .. ``first + count`` of a 440 Hz tone at ``rate``, as one s16 mono row."""
    t = (np.arange(count) + first) / rate
    return (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)


class Pacer:
    """Keeps a synthetic track at its real rate: the first frame is due at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: float | None = None

    async def until(self, offset: float) -> None:
        """Sleep until ``offset`` seconds after the first frame."""
        now = self._clock()
        if self._start is None:
            self._start = now
            return
        wait = self._start + offset - now
        if wait > 0:
            await asyncio.sleep(wait)


async def consume(track, on_frame: Callable[[object], None]) -> None:
    """Receive ``track`` until it ends, handing each frame to ``on_frame``."""
    try:
        while True:
            on_frame(await track.recv())
    except MediaStreamError:
        pass
