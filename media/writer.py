"""The recorder's writer thread: containers, the time origin, the published playlist.

H.264 video is muxed as it arrives (VP8 is transcoded once, :mod:`media.transcode`);
the main audio and the floor's voice are mixed and encoded once to AAC
(:mod:`media.mixer`). Both go into a fragmented MP4 and into HLS segments; the
same AAC alone into the audio rendition, and the picture, scaled and encoded
once, into the low rendition (:mod:`media.renditions`), all named by the
master playlist.
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
    AUDIO_LIVE_PLAYLIST,
    AUDIO_PLAYLIST,
    AUDIO_SEGMENT_PATTERN,
    LIVE_PLAYLIST,
    LOW_LIVE_PLAYLIST,
    LOW_PLAYLIST,
    MASTER_PLAYLIST,
    PLAYLIST,
    RAW_MP4,
    SEGMENT_PATTERN,
    write_atomically,
)
from .mixer import AUDIO_RATE, AudioMixer
from .renditions import (
    AAC_CODECS,
    LowRendition,
    PublishedPlaylist,
    h264_codecs,
    hls_options,
    master_text,
)
from .transcode import H264Packet, Vp8ToH264, h264_parameter_sets, h264_size

logger = logging.getLogger(__name__)


class Writer:
    """The writer thread's state: containers, codecs and the time origin.

    ``on_start(t0_wall, video_codec)`` is called (in the writer thread) when the
    files are opened, at the output's t = 0. ``low_rendition`` False makes no
    low video rendition (a node short of CPU).
    """

    def __init__(
        self,
        directory: Path,
        segment_seconds: float,
        on_start: Callable[[float, str | None], None],
        *,
        low_rendition: bool = True,
        name: str = "recorder",
    ) -> None:
        self.directory = directory
        self.segment_seconds = segment_seconds
        self.low_rendition = low_rendition
        self.name = name
        self._on_start = on_start
        #: (container, video stream | None, audio stream) for the MP4 and the HLS
        self.outputs: list[tuple[OutputContainer, Stream | None, Stream]] = []
        #: the audio rendition's container (a recording with a picture only)
        self._audio_only: tuple[OutputContainer, Stream] | None = None
        self.low: LowRendition | None = None
        #: the variant playlists, full first (the master names them: low, full, audio)
        self.variants: dict[str, PublishedPlaylist] = {
            PLAYLIST: PublishedPlaylist(directory, PLAYLIST, LIVE_PLAYLIST)
        }
        self._master = ""
        self.t0_wall: float | None = None
        self.video_codec: str | None = None
        self._video_origin: int | None = None  # RTP pts of t = 0 (video)
        self._last_video_pts = -1
        self._transcoder: Vp8ToH264 | None = None
        self._audio: AudioMixer | None = None
        self._audio_anchor: dict[str, tuple[int, int]] = {}  # track -> (rtp pts, samples)

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
        pictures: list[tuple[av.VideoFrame, int, bool]] = []  # its decoded picture, for low
        full = self.variants[PLAYLIST]
        full.codecs = AAC_CODECS
        if keyframe is not None:
            self.video_codec = keyframe.codec
            self._video_origin = keyframe.pts
            first = keyframe.data
            if keyframe.codec != "video/h264":
                self._transcoder = Vp8ToH264(
                    self.segment_seconds, lambda *picture: pictures.append(picture)
                )
                pending = self._transcoder.transcode(keyframe.data, 0)
                if not pending:
                    raise ValueError("the first VP8 keyframe did not encode")
                first = pending[0][0]
            width, height = h264_size(first)
            extradata = h264_parameter_sets(first)
            full.codecs = f"{h264_codecs(first)},{AAC_CODECS}"
            full.resolution = (width, height)
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
            # cut at each requested keyframe (they come every segment_seconds, give or take)
            options=hls_options(directory, SEGMENT_PATTERN, self.segment_seconds * 0.9),
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
        if keyframe is not None:
            self._open_renditions(width, height, pictures)
        self._audio = AudioMixer(self._mux_audio)
        self.t0_wall = arrived
        self._on_start(arrived, self.video_codec)
        for data, pts, key in pending:
            self._mux_video(data, pts, key)

    def _open_renditions(
        self,
        width: int,
        height: int,
        pictures: list[tuple[av.VideoFrame, int, bool]],
    ) -> None:
        """The audio rendition and (unless turned off) the low one, beside a picture."""
        directory = self.directory
        container = av.open(
            str(directory / AUDIO_LIVE_PLAYLIST),
            "w",
            format="hls",
            options=hls_options(directory, AUDIO_SEGMENT_PATTERN, self.segment_seconds),
        )
        stream = container.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        stream.time_base = AUDIO_TIME_BASE
        self._audio_only = (container, stream)
        self.variants[AUDIO_PLAYLIST] = PublishedPlaylist(
            directory, AUDIO_PLAYLIST, AUDIO_LIVE_PLAYLIST, codecs=AAC_CODECS
        )
        if self._transcoder is not None:
            self._transcoder.on_picture = None  # the first pictures are in ``pictures``
        if not self.low_rendition:
            return
        low = self.low = LowRendition(directory, self.segment_seconds, (width, height), self.name)
        self.variants[LOW_PLAYLIST] = PublishedPlaylist(
            directory, LOW_PLAYLIST, LOW_LIVE_PLAYLIST, resolution=low.size
        )
        if self._transcoder is not None:  # (H.264: the first keyframe comes by write())
            for picture in pictures:
                low.decoded(*picture)
            self._transcoder.on_picture = low.decoded

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
            if self.low is not None:
                self.low.encoded(frame.data, pts, frame.keyframe)

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
        data, pts = bytes(packet), packet.pts
        outputs = [(container, audio) for container, _, audio in self.outputs]
        if self._audio_only is not None:
            outputs.append(self._audio_only)
        for container, audio in outputs:
            copy = av.Packet(data)
            copy.pts = copy.dts = pts
            copy.time_base = AUDIO_TIME_BASE
            copy.stream = audio
            container.mux(copy)
        if self.low is not None and pts is not None:
            self.low.audio(data, pts)

    # -- the published playlists -------------------------------------------------

    def publish_playlist(self) -> None:
        """Publish each variant playlist once it lists only segments on disk, then the
        master playlist naming the published ones.

        ffmpeg renames its playlists into place even when writing them failed (a
        full disk leaves an empty file): players only ever see a playlist that
        was checked, replaced atomically. Raises OSError if one cannot be written.
        """
        changed = False
        for variant in self.variants.values():
            changed = variant.publish() or changed
        low = self.low
        if low is not None and low.failed:
            try:
                self.variants[LOW_PLAYLIST].end()  # its players reach its end, not a stall
            except OSError:  # a full disk: post-processing ends it (the others go on)
                logger.debug("ending the low rendition's playlist", exc_info=True)
            del self.variants[LOW_PLAYLIST]
            self.low = None
            changed = True
        if changed:
            self._publish_master()

    def _publish_master(self) -> None:
        full = self.variants[PLAYLIST]
        if not full.published:
            return
        low = self.variants.get(LOW_PLAYLIST)
        if low is not None and self.low is not None:
            low.codecs = self.low.codecs
        # wait for each rendition's first segment, but not for ever (a low encoder that
        # falls behind from the start; no sound yet from a camera without a microphone):
        # a rendition that comes later is added once it is there
        if len(full.segments) < 3 and not all(v.published for v in self.variants.values()):
            return
        shown = [v for v in self.variants.values() if v.published and v.codecs]
        order = {LOW_PLAYLIST: 0, PLAYLIST: 1, AUDIO_PLAYLIST: 2}  # players start at the first
        text = master_text(sorted(shown, key=lambda v: order[v.name]))
        if text != self._master:
            write_atomically(self.directory / MASTER_PLAYLIST, text)
            self._master = text

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
        for container in self._containers():
            container.close()
        self.outputs, self._audio_only = [], None
        if self.low is not None:
            self.low.close()
        self.publish_playlist()  # the final ones, with their end marks
        for variant in self.variants.values():
            if variant.ended:
                (self.directory / variant.source).unlink(missing_ok=True)

    def abort(self) -> None:
        if self.low is not None:
            self.low.abort()
        for container in self._containers():
            try:
                container.close()
            except Exception:
                logger.debug("closing a failed recording's file", exc_info=True)
        self.outputs, self._audio_only = [], None

    def _containers(self) -> list[OutputContainer]:
        found = [container for container, _, _ in self.outputs]
        if self._audio_only is not None:
            found.append(self._audio_only[0])
        return found


def _can_start(name: str, frame: EncodedFrame, expect_video: bool) -> bool:
    if name == "video":
        return frame.keyframe
    return name == "audio" and not expect_video
