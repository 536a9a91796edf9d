"""The recording's picture: VP8 transcoded once to H.264; what an MP4 needs of an H.264 keyframe."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av
from av.video.frame import PictureType

from .encoded import VIDEO_TIME_BASE

#: (Annex B bytes, pts in VIDEO_TIME_BASE, keyframe?) of one encoded H.264 frame
H264Packet = tuple[bytes, int, bool]
#: told of each decoded picture once encoded: (picture, pts, made a keyframe?)
OnPicture = Callable[[av.VideoFrame, int, bool], None]


class Vp8ToH264:
    """Decodes VP8 and encodes H.264 once, for every viewer of the HLS and the recording."""

    def __init__(self, segment_seconds: float, on_picture: OnPicture | None = None) -> None:
        #: the decoded pictures go on to the low rendition too (decoded once)
        self.on_picture = on_picture
        self._decoder = av.CodecContext.create("vp8", "r")
        self._encoder: av.VideoCodecContext | None = None
        self._size = (0, 0)
        self._keyframe_every = int(segment_seconds * 90000)
        self._next_keyframe = 0

    def transcode(self, data: bytes, pts: int) -> list[H264Packet]:
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError:
            return []  # damaged: the picture freezes until the next good frame
        out = []
        for frame in frames:
            out.extend(self._encode(frame, pts))
        return out

    def _encode(self, frame: av.VideoFrame, pts: int) -> list[H264Packet]:
        if self._encoder is None:
            self._encoder = self._open_encoder(
                frame.width - frame.width % 2, frame.height - frame.height % 2
            )
        width, height = self._size
        if (frame.width, frame.height) != (width, height) or frame.format.name != "yuv420p":
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        keyframe = pts >= self._next_keyframe
        if keyframe:
            frame.pict_type = PictureType.I
            self._next_keyframe = pts + self._keyframe_every
        else:
            frame.pict_type = PictureType.NONE
        packets = _packets(self._encoder.encode(frame))
        if self.on_picture is not None:
            self.on_picture(frame, pts, keyframe)
        return packets

    def _open_encoder(self, width: int, height: int) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = VIDEO_TIME_BASE
        # Annex B with the parameter sets repeated at each keyframe, like a phone's H.264
        encoder.options = {"preset": "veryfast", "tune": "zerolatency", "bframes": "0"}
        encoder.open()
        self._size = (width, height)
        return encoder

    def flush(self) -> list[H264Packet]:
        if self._encoder is None:
            return []
        return _packets(self._encoder.encode(None))


def _packets(packets: list[av.Packet]) -> list[H264Packet]:
    return [(bytes(p), p.pts or 0, p.is_keyframe) for p in packets]


# -- H.264 Annex B ----------------------------------------------------------------


def _nal_units(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, bytes with start code) of each NAL unit in an Annex B stream."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        begin = i - 1 if i > 0 and data[i - 1] == 0 else i
        starts.append((begin, i + 3))
        i = data.find(b"\x00\x00\x01", i + 3)
    for n, (begin, payload) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(data)
        if payload < len(data):
            yield data[payload] & 0x1F, data[begin:end]


def h264_parameter_sets(keyframe: bytes) -> bytes:
    """The SPS and PPS of a keyframe (the MP4's avcC is built from them)."""
    return b"".join(
        nal if nal.startswith(b"\x00\x00\x00\x01") else b"\x00" + nal
        for kind, nal in _nal_units(keyframe)
        if kind in (7, 8)
    )


def h264_size(keyframe: bytes) -> tuple[int, int]:
    """The picture size, by decoding the keyframe once (simpler than parsing the SPS)."""
    decoder = av.CodecContext.create("h264", "r")
    for frame in decoder.decode(av.Packet(keyframe)):
        return frame.width, frame.height
    for frame in decoder.decode(None):
        return frame.width, frame.height
    raise ValueError("the first H.264 keyframe does not decode")
