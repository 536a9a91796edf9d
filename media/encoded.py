"""Encoded media frames as they travel from the publisher to the viewers."""

from __future__ import annotations

import fractions
from dataclasses import dataclass

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)
OPUS_FRAME_SAMPLES = 960  # 20 ms at 48 kHz, what browsers send


@dataclass(slots=True)
class EncodedFrame:
    """One complete encoded frame, reassembled from RTP by aiortc's jitter buffer.

    ``data`` is the codec's own bitstream (VP8 frame, H.264 Annex B NAL units,
    Opus packet); ``pts`` counts in ``time_base`` (the RTP clock), from 0.
    """

    kind: str
    codec: str  # lower-case mime type: "video/h264", "video/vp8", "audio/opus"
    data: bytes
    pts: int
    time_base: fractions.Fraction
    keyframe: bool

    @property
    def samples(self) -> int | None:
        """Audio duration hint for timestamp rebasing (None for video)."""
        return OPUS_FRAME_SAMPLES if self.kind == "audio" else None


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether a decoder can start at this frame (MEDIA-NOTES: VP8 bit, H.264 IDR/SPS)."""
    if not data:
        return False
    if codec == "video/vp8":
        return data[0] & 0x01 == 0
    if codec == "video/h264":
        return any(nal_type in (5, 7) for nal_type in _h264_nal_types(data))
    return True  # audio: every frame stands alone


def _h264_nal_types(data: bytes):
    """NAL unit types of an Annex B stream (start codes 00 00 01 / 00 00 00 01)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        yield data[start + 3] & 0x1F
        start = data.find(b"\x00\x00\x01", start + 3)
