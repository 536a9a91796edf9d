"""The recorder's writer thread: containers, the time origin, the published playlist.

H.264 video is muxed as it arrives (VP8 is transcoded once, :mod:`media.transcode`);
the main audio and the floor's voice are mixed and encoded once to AAC
(:mod:`media.mixer`). Both go into a fragmented MP4 and into HLS segments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

from .encoded import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame
from .files import (
    ENDLIST,
    LIVE_PLAYLIST,
    PLAYLIST,
    RAW_MP4,
    SEGMENT_PATTERN,
    whole_playlist,
    write_atomically,
)
from .mixer import AUDIO_RATE, AudioMixer
from .transcode import H264Packet, Vp8ToH264, h264_parameter_sets, h264_size

logger = logging.getLogger(__name__)


class Writer:
    """The writer thread's state: containers, codecs and the time origin.

    ``on_start(t0_wall, video_codec)`` is called (in the writer thread) when the
    files are opened, at the output's t = 0.
    """

    def __init__(
        self,
        directory: Path,
        segment_seconds: float,
        on_start: Callable[[float, str | None], None],
    ) -> None:
        self.directory = directory
        self.segment_seconds = segment_seconds
        self._on_start = on_start
        #: (container, video stream | None, audio stream) for the MP4 and the HLS
        self.outputs: list[tuple[OutputContainer, Stream | None, Stream]] = []
        self.t0_wall: float | None = None
        self.video_codec: str | None = None
        self._video_origin: int | None = None  # RTP pts of t = 0 (video)
        self._last_video_pts = -1
        self._transcoder: Vp8ToH264 | None = None
        self._audio: AudioMixer | None = None
        self._audio_anchor: dict[str, tuple[int, int]] = {}  # track -> (rtp pts, samples)
        self._live_seen: tuple[int, int] | None = None  # ffmpeg's playlist: (mtime, size)
        self._published = ""

    # -- frames -----------------------------------------------------------------

    def write(self, name: str, frame: EncodedFrame, arrived: float, *, expect_video: bool) -> None:
        """Write a frame of the source ``name``; ``expect_video`` False starts with audio."""
        if self.t0_wall is None:
            if not _can_start(name, frame, expect_video):
                return
            self._open(frame if name == "video" else None, arrived)
        if name == "video":
            if self._transcoder is not None and frame.pts == self._video_origin:
                return  # the first keyframe: transcoded when the files were opened
            self._write_video(frame)
        else:
            self._write_audio(name, frame, arrived)

    def _open(self, keyframe: EncodedFrame | None, arrived: float) -> None:
        directory = self.directory
        width = height = 0
        extradata = b""
        pending: list[H264Packet] = []  # a VP8 keyframe's first H.264 packets, muxed once open
        if keyframe is not None:
            self.video_codec = keyframe.codec
            self._video_origin = keyframe.pts
            first = keyframe.data
            if keyframe.codec != "video/h264":
                self._transcoder = Vp8ToH264(self.segment_seconds)
                pending = self._transcoder.transcode(keyframe.data, 0)
                if not pending:
                    raise ValueError("the first VP8 keyframe did not encode")
                first = pending[0][0]
            width, height = h264_size(first)
            extradata = h264_parameter_sets(first)
        mp4 = av.open(
            str(directory / RAW_MP4),
            "w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(int(self.segment_seconds * 1_000_000)),
                "flush_packets": "1",
            },
        )
        hls = av.open(
            str(directory / LIVE_PLAYLIST),
            "w",
            format="hls",
            options={
                # cut at each requested keyframe (they come every segment_seconds, give or take)
                "hls_time": str(round(self.segment_seconds * 0.9, 3)),
                "hls_list_size": "0",
                "hls_playlist_type": "event",
                "hls_segment_filename": str(directory / SEGMENT_PATTERN),
                "hls_flags": "temp_file+independent_segments",
            },
        )
        for container in (mp4, hls):
            video = None
            if keyframe is not None:
                video = container.add_stream("h264", rate=30)
                video.width, video.height = width, height
                video.time_base = VIDEO_TIME_BASE
                video.codec_context.extradata = extradata
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
            audio.time_base = AUDIO_TIME_BASE
            self.outputs.append((container, video, audio))
        self._audio = AudioMixer(self._mux_audio)
        self.t0_wall = arrived
        self._on_start(arrived, self.video_codec)
        for data, pts, key in pending:
            self._mux_video(data, pts, key)

    def _write_video(self, frame: EncodedFrame) -> None:
        if self._video_origin is None:
            return  # an audio-only recording: a later camera is not in it
        pts = frame.pts - self._video_origin
        if pts < 0:
            return
        if self._transcoder is not None:
            for data, out_pts, key in self._transcoder.transcode(frame.data, pts):
                self._mux_video(data, out_pts, key)
        elif frame.codec == "video/h264":
            self._mux_video(frame.data, pts, frame.keyframe)

    def _mux_video(self, data: bytes, pts: int, keyframe: bool) -> None:
        if pts <= self._last_video_pts:
            pts = self._last_video_pts + 1  # a repeated timestamp: muxers want them rising
        self._last_video_pts = pts
        for container, video, _ in self.outputs:
            assert video is not None  # opened at a keyframe: every output has a picture
            packet = av.Packet(data)
            packet.pts = packet.dts = pts
            packet.time_base = VIDEO_TIME_BASE
            packet.stream = video
            packet.is_keyframe = keyframe
            container.mux(packet)

    def _write_audio(self, name: str, frame: EncodedFrame, arrived: float) -> None:
        assert self.t0_wall is not None and self._audio is not None  # opened by write()
        anchor = self._audio_anchor.get(name)
        if anchor is None:
            # this source's first frame: its RTP time is placed at its arrival
            anchor = (frame.pts, int((arrived - self.t0_wall) * AUDIO_RATE))
            self._audio_anchor[name] = anchor
        shift = self._audio.add(name, frame.data, frame.pts - anchor[0] + anchor[1])
        if shift:
            self._audio_anchor[name] = (anchor[0], anchor[1] + shift)

    def _mux_audio(self, packet: av.Packet) -> None:
        for container, _, audio in self.outputs:
            copy = av.Packet(bytes(packet))
            copy.pts = copy.dts = packet.pts
            copy.time_base = AUDIO_TIME_BASE
            copy.stream = audio
            container.mux(copy)

    # -- the published playlist ---------------------------------------------------

    def publish_playlist(self) -> None:
        """Copy ffmpeg's playlist to ``index.m3u8`` once it lists only segments on disk.

        ffmpeg renames its playlist into place even when writing it failed (a
        full disk leaves an empty file): players only ever see a playlist that
        was checked, replaced atomically. Raises OSError if it cannot be written.
        """
        directory = self.directory
        source = directory / LIVE_PLAYLIST
        try:
            stat = source.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._live_seen:
                return
            self._live_seen = seen
            text = source.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return
        if text == self._published or not whole_playlist(text, directory, self._published):
            return
        if len(text) < len(self._published) and ENDLIST not in text:
            return  # an event playlist only grows
        write_atomically(directory / PLAYLIST, text)
        self._published = text

    # -- end ----------------------------------------------------------------------

    def duration(self) -> float:
        video = max(self._last_video_pts, 0) / 90000
        audio = self._audio.written / AUDIO_RATE if self._audio else 0.0
        return round(max(video, audio), 3)

    def close(self) -> None:
        if self._transcoder is not None:
            for data, pts, key in self._transcoder.flush():
                self._mux_video(data, pts, key)
        if self._audio is not None:
            self._audio.flush()
        for container, _, _ in self.outputs:
            container.close()
        self.outputs = []
        self.publish_playlist()  # the final one, with its end mark
        if ENDLIST in self._published:
            (self.directory / LIVE_PLAYLIST).unlink(missing_ok=True)

    def abort(self) -> None:
        for container, _, _ in self.outputs:
            try:
                container.close()
            except Exception:
                logger.debug("closing a failed recording's file", exc_info=True)
        self.outputs = []


def _can_start(name: str, frame: EncodedFrame, expect_video: bool) -> bool:
    if name == "video":
        return frame.keyframe
    return name == "audio" and not expect_video
