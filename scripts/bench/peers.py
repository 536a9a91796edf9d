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
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

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


def speech_like(seconds: float = 4.0, rate: int = 48000, seed: int = 3) -> np.ndarray:
    """``seconds`` of a voice-like signal, s16 mono: what an encoder's voice detector calls speech.

    A pure tone is not speech to Opus: its SILK layer adds in-band FEC only to frames
    it finds voiced, so a loss test needs something closer to a voice. Here: harmonics
    of a gliding pitch (100-220 Hz) shaped by three moving formants, in syllables of
    about 0.2 s with short pauses, and a little noise. Deterministic; loops cleanly.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 150 + 60 * np.sin(2 * math.pi * 0.7 * t) + 10 * np.sin(2 * math.pi * 5.3 * t)
    phase = 2 * math.pi * np.cumsum(f0) / rate
    formants = [
        (600 + 250 * np.sin(2 * math.pi * 1.9 * t), 90),
        (1400 + 500 * np.sin(2 * math.pi * 1.3 * t + 1), 120),
        (2600 + 200 * np.sin(2 * math.pi * 0.9 * t + 2), 200),
    ]
    voice = np.zeros(n)
    for k in range(1, 26):  # harmonics up to ~5 kHz
        freq = k * f0
        gain = sum(np.exp(-(((freq - centre) / width) ** 2) / 2) for centre, width in formants)
        voice += (gain + 0.02) / k**0.5 * np.sin(k * phase)
    syllable = np.clip(np.sin(2 * math.pi * 2.5 * t) * 1.4, 0, 1) ** 0.7  # ~0.2 s on, short off
    signal = voice * syllable + 0.02 * rng.standard_normal(n)
    fade = np.minimum(1, np.minimum(t, seconds - t) / 0.05)  # loops without a click
    signal *= fade / np.max(np.abs(signal))
    return (signal * 12000).astype(np.int16).reshape(1, -1)


class SpeechAudioTrack(MediaStreamTrack):
    """:func:`speech_like` in 20 ms frames at 48 kHz, at its real rate, looping."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        self._signal = speech_like(rate=self.RATE)
        self._pts = 0
        self._pace = Pacer()

    async def recv(self):
        import fractions

        import av

        await self._pace.until(self._pts / self.RATE)
        length = self._signal.shape[1]
        start = self._pts % length
        chunk = np.take(self._signal, range(start, start + self.SAMPLES), axis=1, mode="wrap")
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.RATE)
        self._pts += self.SAMPLES
        return frame
