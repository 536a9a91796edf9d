"""The live HLS's renditions: published variant playlists, the master playlist, the low video.

The writer (:mod:`media.writer`) makes three renditions of one meeting, each a
variant playlist of its own:

- ``index.m3u8`` (``seg_NNNNN.ts``): the forwarded picture as it comes (VP8
  transcoded once) and the mixed sound: the *full* rendition, which
  post-processing and older clients use;
- ``audio.m3u8`` (``audio_NNNNN.ts``): the very same AAC packets alone, no
  picture: no encoding of its own;
- ``low.m3u8`` (``low_NNNNN.ts``): the picture decoded once, scaled to at
  most 360 lines and 15 fps and encoded once with libx264 (capped at 190
  kbit/s), with the same AAC packets (:class:`LowRendition`, in a thread of its own; a node may
  turn it off).

ffmpeg writes each playlist under a private name; :class:`PublishedPlaylist`
copies it to the served name, atomically, only once every segment it lists is
on disk, and measures each segment's bitrate. ``master.m3u8`` names the
variants that have been published (:func:`master_text`), with their measured
bandwidth, so a player never gets a master naming a playlist that is not there.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from .encoded import AUDIO_TIME_BASE, VIDEO_TIME_BASE
from .files import (
    ENDLIST,
    LOW_LIVE_PLAYLIST,
    LOW_SEGMENT_PATTERN,
    whole_playlist,
    write_atomically,
)
from .mixer import AUDIO_RATE
from .transcode import h264_parameter_sets

logger = logging.getLogger(__name__)

AAC_CODECS = "mp4a.40.2"
#: the low rendition's picture: at most this many lines (aspect kept, even sizes)
LOW_HEIGHT = 360
#: libx264's quality and ceiling for the low picture (the AAC sound and the MPEG-TS
#: overhead come on top: at most ~290 kbit/s in all)
LOW_VIDEO_CRF = 27
LOW_VIDEO_MAXRATE = 190_000
#: at most this many pictures a second (a 30 fps camera gives 15, a 20 fps one 15 on
#: average): half the encoding and scaling, and more bits for each picture
LOW_FPS = 15
#: items waiting for the low encoder (pictures and sound, ~2 s of a 30 fps camera):
#: beyond, it drops pictures until the next keyframe rather than let the writer wait
#: or memory grow (a VP8 source's pictures wait decoded: ~0.5 MB each at 640×480)
LOW_MAX_QUEUED = 160
#: sound waiting for the low rendition's container before its first picture
LOW_MAX_PENDING_AUDIO = 500


#: segments in ffmpeg's own playlist: ffmpeg keeps a record of every segment of its list
#: in memory (about 12.5 KB each: with three renditions, about 70 MB in an hour's part), so
#: it is given a window and :class:`PublishedPlaylist` keeps the whole event playlist
WINDOW = 10
#: tags that belong to the segment after them, not to the playlist's header
SEGMENT_TAGS = ("#EXTINF", "#EXT-X-DISCONTINUITY", "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-BYTERANGE")


def hls_options(directory: Path, segment_pattern: str, hls_time: float) -> dict[str, str]:
    """ffmpeg's HLS muxer options shared by every rendition (a window of the list, temp files)."""
    return {
        "hls_time": str(round(hls_time, 3)),
        "hls_list_size": str(WINDOW),
        "hls_segment_filename": str(directory / segment_pattern),
        "hls_flags": "temp_file+independent_segments",
        # MPEG-TS: sound in PES packets of up to 0.35 s (ffmpeg's command line does the
        # same); without it each 21 ms AAC frame is a padded packet of its own, which
        # doubles the audio rendition's size
        "max_delay": "700000",
    }


def h264_codecs(keyframe: bytes) -> str:
    """The RFC 6381 name of an H.264 stream (``avc1.PPCCLL``) from a keyframe's SPS."""
    for nal in h264_parameter_sets(keyframe).split(b"\x00\x00\x00\x01"):
        if nal and nal[0] & 0x1F == 7 and len(nal) >= 4:
            return f"avc1.{nal[1]:02x}{nal[2]:02x}{nal[3]:02x}"
    return "avc1.42e01e"  # constrained baseline 3.0: what every player takes


def low_size(width: int, height: int) -> tuple[int, int]:
    """The low picture's size: at most :data:`LOW_HEIGHT` lines, the aspect kept, even."""
    if height <= 0 or width <= 0:
        return 0, 0
    lines = min(LOW_HEIGHT, height)
    lines -= lines % 2
    columns = round(width * lines / height)
    columns -= columns % 2
    return max(columns, 2), max(lines, 2)


# -- published playlists ---------------------------------------------------------


@dataclass
class PublishedPlaylist:
    """One variant: ffmpeg's private playlist (``source``) published as ``name``.

    ffmpeg's playlist is a window of the last :data:`WINDOW` segments; ``publish()``
    adds its new segments to the whole event playlist once it lists only segments on
    disk (ffmpeg renames its playlist into place even when writing it failed: a full
    disk leaves an empty file), replaces the served one atomically, and keeps each new
    segment's (seconds, bytes) for the master playlist's bandwidth.
    """

    directory: Path
    name: str
    source: str
    #: RFC 6381 codecs and picture size, for the master playlist
    codecs: str = ""
    resolution: tuple[int, int] | None = None
    text: str = ""
    segments: dict[str, tuple[float, int]] = field(default_factory=dict)
    _seen: tuple[int, int] | None = None
    _header: list[str] = field(default_factory=list)
    _entries: list[str] = field(default_factory=list)  # each segment's tags and URI
    _uris: set[str] = field(default_factory=set)
    _target: int = 0

    @property
    def published(self) -> bool:
        return bool(self.segments)

    @property
    def ended(self) -> bool:
        return ENDLIST in self.text

    def publish(self) -> bool:
        """Publish ffmpeg's newer playlist if whole; True if it was. Raises OSError
        if it cannot be written."""
        source = self.directory / self.source
        try:
            stat = source.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._seen:
                return False
            self._seen = seen
            text = source.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        if not whole_playlist(text, self.directory, self.text):
            return False
        merged = self._merged(text)
        if merged == self.text:
            return False
        write_atomically(self.directory / self.name, merged)
        self.text = merged
        self._measure(text)
        return True

    def _merged(self, window: str) -> str:
        """The whole event playlist: what was published, and the window's new segments."""
        ended, in_header = False, True
        header: list[str] = []
        block: list[str] = []  # the tags of the segment being read (#EXTINF...)
        entries, uris, target = list(self._entries), set(self._uris), self._target
        for line in window.splitlines():
            if line == ENDLIST:
                ended = True
            elif line.startswith("#EXT-X-TARGETDURATION:"):
                target = max(target, int(line.split(":", 1)[1] or 0))
            elif line.startswith(("#EXT-X-MEDIA-SEQUENCE:", "#EXT-X-PLAYLIST-TYPE:")):
                continue  # the whole playlist starts at 0, and is an event playlist
            elif in_header and line.startswith("#EXT") and not line.startswith(SEGMENT_TAGS):
                if line != "#EXTM3U":
                    header.append(line)  # #EXT-X-VERSION, #EXT-X-INDEPENDENT-SEGMENTS
            elif line:
                in_header = False
                if line.startswith("#"):
                    block.append(line)
                    continue
                if line not in uris:
                    uris.add(line)
                    entries.append("\n".join([*block, line]))
                block = []
        self._header = self._header or header
        self._entries, self._uris, self._target = entries, uris, target
        lines = [
            "#EXTM3U",
            *self._header,
            f"#EXT-X-TARGETDURATION:{target}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:EVENT",
            *entries,
        ]
        return "\n".join([*lines, ENDLIST] if ended else lines) + "\n"

    def _measure(self, text: str) -> None:
        seconds = 0.0
        for line in text.splitlines():
            if line.startswith("#EXTINF:"):
                try:
                    seconds = float(line[8:].split(",", 1)[0])
                except ValueError:
                    seconds = 0.0
            elif line and not line.startswith("#") and line not in self.segments:
                try:
                    size = (self.directory / Path(line).name).stat().st_size
                except OSError:
                    size = 0
                self.segments[line] = (seconds, size)

    def end(self) -> None:
        """Close a playlist whose writer stopped before ffmpeg could (a failed output)."""
        if self.text and not self.ended:
            self.text = self.text.rstrip("\n") + f"\n{ENDLIST}\n"
            write_atomically(self.directory / self.name, self.text)

    def bandwidth(self) -> tuple[int, int]:
        """(peak, average) bits a second, measured on the segments published so far.

        The peak is that of the segments of at least a second (a short last
        segment would overstate it)."""
        seconds = sum(s for s, _ in self.segments.values())
        size = sum(b for _, b in self.segments.values())
        average = round(size * 8 / seconds) if seconds > 0 else 0
        rates = [b * 8 / s for s, b in self.segments.values() if s >= 1.0]
        return max(round(max(rates, default=0)), average), average


def master_text(variants: list[PublishedPlaylist]) -> str:
    """The master playlist naming ``variants`` (in order: the first is where players start)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        peak, average = variant.bandwidth()
        attributes = [f"BANDWIDTH={max(peak, 1000)}", f"AVERAGE-BANDWIDTH={max(average, 1000)}"]
        if variant.resolution:
            attributes.append("RESOLUTION={}x{}".format(*variant.resolution))
        attributes.append(f'CODECS="{variant.codecs}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), variant.name]
    return "\n".join(lines) + "\n"


# -- the low rendition -------------------------------------------------------------

#: ("h264", Annex B bytes, pts, keyframe) | ("frame", decoded picture, pts, keyframe)
#: | ("audio", AAC bytes, pts, False) | None (stop)
_Item = tuple[str, object, int, bool] | None


class LowRendition:
    """The low video rendition, made in a thread of its own (``recorder-<room>-low``).

    The writer hands it the picture it forwards (H.264, decoded here once) or
    the one it decoded already (VP8, on its way to H.264) and the AAC packets it
    muxes everywhere; this thread scales the picture to :func:`low_size`,
    encodes it once with libx264 (a keyframe exactly where the full rendition
    has one, so both cut their segments at the same frames) and muxes both into
    ``low_NNNNN.ts`` under ffmpeg's private playlist, which the writer
    publishes. It never makes the writer wait: with :data:`LOW_MAX_QUEUED`
    pictures waiting it drops pictures until the next keyframe (logged). A
    failure (a full disk) stops only this rendition: ``failed`` says why.
    """

    def __init__(
        self, directory: Path, segment_seconds: float, source: tuple[int, int], name: str
    ) -> None:
        self.directory = directory
        self.segment_seconds = segment_seconds
        self.size = low_size(*source)
        self.codecs = ""  # known at the first encoded picture
        self.failed = ""
        self.dropped = 0
        self._skip = False
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._abort = False
        self._decoder = av.CodecContext.create("h264", "r")  # used for H.264 sources
        self._encoder: av.VideoCodecContext | None = None
        self._container: av.container.OutputContainer | None = None
        self._video: av.stream.Stream | None = None
        self._audio: av.stream.Stream | None = None
        self._pending_audio: list[tuple[bytes, int]] = []
        self._last_pts = -1
        self._next_due = 0  # the pts from which the next picture is encoded
        self._reformatter = VideoReformatter()  # keeps its scaler: 1/3 of the cost
        self._thread = threading.Thread(target=self._run, name=f"{name}-low", daemon=True)
        self._thread.start()

    # -- the writer's side ------------------------------------------------------------

    def encoded(self, data: bytes, pts: int, keyframe: bool) -> None:
        self._put_video(("h264", data, pts, keyframe), keyframe)

    def decoded(self, frame: av.VideoFrame, pts: int, keyframe: bool) -> None:
        self._put_video(("frame", frame, pts, keyframe), keyframe)

    def audio(self, data: bytes, pts: int) -> None:
        if not self.failed and self._queue.qsize() < 4 * LOW_MAX_QUEUED:
            self._queue.put(("audio", data, pts, False))

    def _put_video(self, item: _Item, keyframe: bool) -> None:
        if self.failed:
            return
        if self._skip and not keyframe:
            self.dropped += 1
            return
        if self._queue.qsize() >= LOW_MAX_QUEUED:
            if not self._skip:
                logger.info(
                    "%s: the low rendition's encoder falls behind: pictures dropped "
                    "until the next keyframe (%s so far)",
                    self._thread.name,
                    self.dropped + 1,
                )
            self.dropped += 1
            self._skip = True
            return
        self._skip = False
        self._queue.put(item)

    def close(self) -> None:
        """Encode what is queued, flush, close the files (blocks until done)."""
        self._queue.put(None)
        self._thread.join()

    def abort(self) -> None:
        """Stop at once; the files end where they are."""
        self._abort = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None or self._abort:
                    break
                kind, payload, pts, keyframe = item
                if kind == "audio":
                    assert isinstance(payload, bytes)
                    self._mux_audio(payload, pts)
                elif kind == "h264":
                    assert isinstance(payload, bytes)
                    for frame in self._decode(payload):
                        self._encode(frame, pts, keyframe)
                else:
                    assert isinstance(payload, av.VideoFrame)
                    self._encode(payload, pts, keyframe)
            if not self._abort:
                if self._encoder is not None:
                    self._mux_video(self._encoder.encode(None))
            self._close_container()
        except Exception as exc:
            self.failed = str(exc) or type(exc).__name__
            logger.info("%s: the low rendition stopped: %s", self._thread.name, self.failed)
            self._close_container()

    def _close_container(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:
                self.failed = self.failed or str(exc) or type(exc).__name__
                logger.debug("closing the low rendition", exc_info=True)
            self._container = None

    def _decode(self, data: bytes) -> list[av.VideoFrame]:
        try:
            return list(self._decoder.decode(av.Packet(data)))
        except av.FFmpegError:
            return []  # damaged: the picture freezes until the next good frame

    def _encode(self, frame: av.VideoFrame, pts: int, keyframe: bool) -> None:
        width, height = self.size
        if self._encoder is None:
            if not keyframe:
                return  # start where the full rendition starts a segment
            self._encoder = _low_encoder(width, height)
        interval = 90000 // LOW_FPS
        if not keyframe and pts < self._next_due:
            return  # above LOW_FPS: this picture is left out
        self._next_due = max(self._next_due + interval, pts - interval)
        frame = self._reformatter.reformat(
            frame, width=width, height=height, format="yuv420p", interpolation="AREA"
        )
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        self._mux_video(self._encoder.encode(frame))

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            data = bytes(packet)
            if self._container is None:
                self._open(data)
            assert self._container is not None and self._video is not None
            pts = packet.pts or 0
            if pts <= self._last_pts:
                pts = self._last_pts + 1
            self._last_pts = pts
            out = av.Packet(data)
            out.pts = out.dts = pts
            out.time_base = VIDEO_TIME_BASE
            out.stream = self._video
            out.is_keyframe = packet.is_keyframe
            self._container.mux(out)

    def _mux_audio(self, data: bytes, pts: int) -> None:
        if self._container is None:
            self._pending_audio.append((data, pts))
            del self._pending_audio[:-LOW_MAX_PENDING_AUDIO]
            return
        assert self._audio is not None
        out = av.Packet(data)
        out.pts = out.dts = pts
        out.time_base = AUDIO_TIME_BASE
        out.stream = self._audio
        self._container.mux(out)

    def _open(self, keyframe: bytes) -> None:
        directory = self.directory
        container = av.open(
            str(directory / LOW_LIVE_PLAYLIST),
            "w",
            format="hls",
            options=hls_options(directory, LOW_SEGMENT_PATTERN, self.segment_seconds * 0.9),
        )
        video = container.add_stream("h264", rate=30)
        video.width, video.height = self.size
        video.time_base = VIDEO_TIME_BASE
        video.codec_context.extradata = h264_parameter_sets(keyframe)
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        audio.time_base = AUDIO_TIME_BASE
        self._container, self._video, self._audio = container, video, audio
        self.codecs = f"{h264_codecs(keyframe)},{AAC_CODECS}"
        pending, self._pending_audio = self._pending_audio, []
        for data, pts in pending:
            self._mux_audio(data, pts)


def _low_encoder(width: int, height: int) -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = VIDEO_TIME_BASE
    encoder.framerate = Fraction(LOW_FPS)  # a hint for the rate control; timestamps rule
    encoder.gop_size = 100_000  # keyframes only where the full rendition has one
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "bframes": "0",
        # constant quality, capped: a still picture costs little, a busy one at most the cap
        "crf": str(LOW_VIDEO_CRF),
        "maxrate": str(LOW_VIDEO_MAXRATE),
        "bufsize": str(LOW_VIDEO_MAXRATE),
        "x264-params": "scenecut=0",
    }
    encoder.open()
    return encoder
