"""Opus with in-band FEC for the viewers: the meeting's audio re-encoded once, never per viewer.

A lost Opus packet can be rebuilt from the next one only if the encoder put a
low-bitrate copy of it there (in-band FEC, "LBRR"), and an encoder does that
only when it is told to expect loss. The publisher's encoder is told by the
receiver of its stream, the server, whose link to it is usually clean: a
browser then sends no FEC at all, and aiortc's encoder never does. So the
frames viewers get are decoded once per meeting and encoded again with FEC on
and an expected loss of :data:`PACKET_LOSS_PERCENT`; a viewer's browser uses
them when a packet is lost (NetEq decodes the FEC copy instead of concealing).
The recording keeps the publisher's own frames (the fan-out's taps see them
before this).

Cost: one Opus decode and one encode per 20 ms frame per source (main audio,
floor), about 0.45 ms a frame together on this machine: about 2 % of a core per
source while it has viewers, whatever their number.
"""

from __future__ import annotations

import logging
from typing import Any

import av
import numpy as np

from .encoded import AUDIO_TIME_BASE, OPUS_FRAME_SAMPLES, EncodedFrame

logger = logging.getLogger(__name__)

#: the loss the encoder protects against (libopus spends part of the bitrate on FEC)
PACKET_LOSS_PERCENT = 10
#: mono speech; the FEC copy is carried inside this rate
BITRATE = 32_000
#: encoder failures (libopus missing, a broken build) before the publisher's frames go as they are
MAX_FAILURES = 50
_RATE = 48_000
CODEC = "audio/opus"


class OpusFecReencoder:
    """Decodes a source's Opus frames and encodes them again, mono, with in-band FEC.

    Call it with each frame in order; it returns the frames to send (usually one,
    with the input's timestamp, so viewers' clocks do not move). A frame that cannot
    be decoded is passed through unchanged (a bad frame must not silence everyone).
    """

    def __init__(self, bitrate: int = BITRATE, packet_loss: int = PACKET_LOSS_PERCENT) -> None:
        self.bitrate = bitrate
        self.packet_loss = packet_loss
        self.frames_in = 0
        self.frames_out = 0
        self.passed_through = 0
        #: the encoder's own failures (not a bad frame's); past MAX_FAILURES it gives up
        self.failures = 0
        self._decoder: av.AudioCodecContext | None = None
        self._encoder: av.AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._pending: np.ndarray[Any, np.dtype[np.int16]] = np.zeros(0, dtype=np.int16)
        self._pending_pts: int | None = None

    def _open(self) -> None:
        decoder = av.CodecContext.create("opus", "r")
        decoder.sample_rate = _RATE
        decoder.layout = "stereo"  # either is decoded; resampled to mono below
        decoder.format = "s16"
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = _RATE
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.bit_rate = self.bitrate
        encoder.time_base = AUDIO_TIME_BASE
        encoder.options = {
            "application": "voip",
            "frame_duration": "20",
            "fec": "1",
            "packet_loss": str(self.packet_loss),
            "vbr": "on",
            "compression_level": "5",
        }
        encoder.open()
        self._decoder, self._encoder = decoder, encoder
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=_RATE)

    def __call__(self, frame: EncodedFrame) -> list[EncodedFrame]:
        self.frames_in += 1
        if frame.codec != CODEC or self.failures >= MAX_FAILURES:
            return [frame]
        try:
            return self._reencode(frame)
        except Exception:  # never silence the meeting: send the publisher's frame
            self.failures += 1
            log = logger.exception if self.failures == 1 else logger.debug
            log("Opus re-encoding failed: frame passed through", exc_info=True)
            if self.failures == MAX_FAILURES:
                logger.warning("Opus re-encoding gave up: viewers get the publisher's Opus")
            self.passed_through += 1
            self._encoder = None  # start afresh with the next frame
            return [frame]

    def _reencode(self, frame: EncodedFrame) -> list[EncodedFrame]:
        if self._encoder is None:
            self._open()
        assert self._decoder and self._encoder and self._resampler
        try:
            packet = av.Packet(frame.data)
            packet.pts = frame.pts
            packet.time_base = AUDIO_TIME_BASE
            samples = [
                out.to_ndarray().reshape(-1)
                for decoded in self._decoder.decode(packet)
                for out in self._resampler.resample(decoded)
            ]
        except (av.FFmpegError, ValueError):
            logger.debug("an Opus frame could not be decoded: passed through", exc_info=True)
            self.passed_through += 1
            return [frame]
        pcm = (np.concatenate(samples) if samples else np.zeros(0)).astype(np.int16, copy=False)
        expected = None
        if self._pending_pts is not None:
            expected = self._pending_pts + len(self._pending)
        if expected is None or frame.pts != expected:
            # the first frame, or a gap upstream (a new source, silence): start afresh
            # at this frame's time; what was left of the last one is dropped (< 20 ms)
            self._pending, self._pending_pts = pcm, frame.pts
        else:
            self._pending = np.concatenate((self._pending, pcm))
        out: list[EncodedFrame] = []
        while len(self._pending) >= OPUS_FRAME_SAMPLES:
            chunk = self._pending[:OPUS_FRAME_SAMPLES]
            assert self._pending_pts is not None
            pts = self._pending_pts
            self._pending = self._pending[OPUS_FRAME_SAMPLES:]
            self._pending_pts = pts + OPUS_FRAME_SAMPLES
            pcm_frame = av.AudioFrame.from_ndarray(
                chunk.reshape(1, -1), format="s16", layout="mono"
            )
            pcm_frame.sample_rate = _RATE
            pcm_frame.pts = pts
            pcm_frame.time_base = AUDIO_TIME_BASE
            for encoded in self._encoder.encode(pcm_frame):
                out.append(
                    EncodedFrame(
                        kind="audio",
                        codec=CODEC,
                        data=bytes(encoded),
                        pts=pts,
                        time_base=AUDIO_TIME_BASE,
                        keyframe=True,
                    )
                )
        self.frames_out += len(out)
        return out

    def stats(self) -> dict[str, int]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "passed_through": self.passed_through,
        }
