"""Recording and live HLS: the room's forwarded frames, muxed once, in a writer thread.

H.264 video is never re-encoded: the very frames the fan-out forwards are muxed
into a fragmented MP4 (``raw.mp4``, playable up to its last fragment after a
crash) and into HLS segments (``index.m3u8``, ``seg_NNNNN.ts``) in the
recording's directory. ffmpeg writes its playlist to a private name; the
published ``index.m3u8`` is replaced (atomically) only by a playlist whose
segments are all on disk, so a full disk never leaves players an empty or
torn playlist. VP8 cannot go into HLS or MP4 players, so it is
transcoded once, here, to H.264. The main audio (Opus) and the floor speaker's
voice are mixed and encoded once to AAC. None of this runs on the event loop:
the fan-outs only put frames on a queue (:meth:`Recorder.tap`).

Time: the output starts (t = 0) at the first video keyframe (the first audio
frame for an audio-only publisher); every track is placed by its frames' RTP
time, anchored to the wall clock at its first frame, so the recording's time
and the wall clock agree (``on_event`` reports the wall time of t = 0).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import fractions
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .encoded import EncodedFrame

logger = logging.getLogger(__name__)

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_TB = fractions.Fraction(1, AUDIO_RATE)
AAC_FRAME = 1024
AAC_BITRATE = 64000  # mono speech: ~28 MB an hour for the audio-only file
#: the mixed sound is encoded this far behind the newest sample of either source
MIX_DELAY = AUDIO_RATE // 4
#: a frame further ahead of the output than this is a clock jump, not a real position
MAX_AHEAD = 5 * AUDIO_RATE
#: the queue between the fan-outs and the writer (~25 s of frames): beyond it
#: frames are dropped rather than let memory grow behind a stalled disk
MAX_QUEUED = 2000
#: the writer sleeps this long between batches of queued frames
BATCH_SECONDS = 0.1

RAW_MP4 = "raw.mp4"
PLAYLIST = "index.m3u8"
#: the playlist as ffmpeg writes it (never served): copied to PLAYLIST once complete
LIVE_PLAYLIST = ".live.m3u8"
SEGMENT_PATTERN = "seg_%05d.ts"
LOCK_FILE = ".lock"
ENDLIST = "#EXT-X-ENDLIST"
#: a recording stops (closing its files properly) when the disk has less than this
#: left: room for the last fragment, the trailer and the final playlist
MIN_FREE_BYTES = 1 << 20
#: and starts (or resumes, as a new part) only with this much free, so that a disk
#: on the edge does not make a new part every few seconds
RESUME_FREE_BYTES = 4 << 20
DISK_FULL = "the recordings disk is full"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def is_disk_full(exc: BaseException | str) -> bool:
    """Whether ``exc`` (or a message, ffmpeg's say) says the disk or the quota is full."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


@dataclass(frozen=True)
class RecordingEvent:
    """What a recorder tells its owner (delivered on the event loop)."""

    room_id: str
    #: "started" (first frame written), "stopped" (files closed) or "failed"
    kind: str
    #: wall-clock time (epoch seconds) of the recording's t = 0, once started
    started_at: float | None = None
    #: seconds recorded (stopped)
    duration: float = 0.0
    video_codec: str | None = None
    error: str = ""
    #: the recording ended because the disk filled up ("stopped": the files were
    #: closed in time; "failed": a write failed, the files end at their last fragment)
    disk_full: bool = False


class DirectoryLock:
    """An exclusive ``flock`` on a recording directory's lock file.

    The writer holds it while it writes and post-processing while it works; the
    kernel drops it when the process dies, even by ``kill -9``, so whoever can
    take it knows nobody is writing there any more.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Recorder:
    """Writes one room to ``directory``: a fragmented MP4 and a live HLS playlist.

    Create it, :meth:`start` it, feed it with :meth:`tap` from the event loop,
    and :meth:`stop` it. ``expect_video`` False starts the output at the first
    audio frame instead of waiting for a picture.
    """

    def __init__(
        self,
        room_id: str,
        directory: Path,
        on_event: Callable[[RecordingEvent], None],
        *,
        segment_seconds: float = 2.0,
        expect_video: bool = True,
    ) -> None:
        self.room_id = room_id
        self.directory = Path(directory)
        self.segment_seconds = segment_seconds
        self.expect_video = expect_video
        self._on_event = on_event
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.dropped = 0
        self._skip_to_keyframe = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = DirectoryLock(self.directory)
        self._done = threading.Event()
        self.writer: _Writer | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._lock.acquire():
            raise RuntimeError(f"{self.directory} is being written by another process")
        self._loop = asyncio.get_running_loop()
        self.writer = _Writer(self)
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{self.room_id}", daemon=True
        )
        self._thread.start()

    @property
    def started(self) -> bool:
        return self.writer is not None and self.writer.t0_wall is not None

    @property
    def waiting_for_keyframe(self) -> bool:
        """No picture yet, or frames were dropped: the next keyframe resumes it."""
        return self._skip_to_keyframe or (self.expect_video and not self.started)

    def tap(self, name: str, frame: EncodedFrame) -> None:
        """Called by a fan-out for each frame: ``name`` is "audio", "video" or "floor"."""
        if name == "video" and self._skip_to_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self._skip_to_keyframe = False
        if self._queue.qsize() >= MAX_QUEUED:
            # the disk or the writer cannot keep up: drop, and resume the picture
            # at a keyframe (a decoder cannot start from a frame missing its reference)
            self.dropped += 1
            self._skip_to_keyframe = True
            return
        self._queue.put((name, frame, time.time()))

    async def stop(self) -> None:
        """Flush and close the files; returns once the writer thread is done."""
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._done.wait)
        self._thread = None

    def _emit(self, event: RecordingEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._on_event, event)
        except RuntimeError:
            pass  # the loop is closing

    def _run(self) -> None:
        writer = self.writer
        disk_full = False
        try:
            running = True
            while running:
                # Work in batches: waking for each of ~80 frames a second costs
                # several times the work itself (measured: 6.6 % of a core per
                # frame, 3.9 % in 0.1 s batches). Segments are 2 s: the delay is nothing.
                batch = [self._queue.get()]
                try:
                    while True:
                        batch.append(self._queue.get_nowait())
                except queue.Empty:
                    pass
                for item in batch:
                    if item is None:
                        running = False
                        break
                    writer.write(*item)
                writer.publish_playlist()
                free = free_bytes(self.directory)
                if running and free < MIN_FREE_BYTES:
                    # stop while the last fragment, the trailer and the final
                    # playlist still fit: what was recorded stays whole
                    logger.info(
                        "recording of room %s stops: %s (%s bytes free in %s)",
                        self.room_id,
                        DISK_FULL,
                        free,
                        self.directory,
                    )
                    disk_full = True
                    break
                if running:
                    time.sleep(BATCH_SECONDS)
            writer.close()
            event = RecordingEvent(
                self.room_id,
                "stopped",
                writer.t0_wall,
                writer.duration(),
                writer.video_codec,
                error=DISK_FULL if disk_full else "",
                disk_full=disk_full,
            )
        except Exception as exc:
            full = is_disk_full(exc)
            if full:
                # one line, no traceback: the owner says what it means for the meeting
                logger.info("recording of room %s stopped: %s (%s)", self.room_id, DISK_FULL, exc)
            else:
                logger.exception("recording of room %s failed", self.room_id)
            writer.abort()
            event = RecordingEvent(
                self.room_id,
                "failed",
                writer.t0_wall,
                writer.duration(),
                writer.video_codec,
                error=DISK_FULL if full else str(exc),
                disk_full=full,
            )
        finally:
            # the folder is free before anyone hears it is: post-processing takes the lock
            self._lock.release()
        self._emit(event)
        self._done.set()


class _Writer:
    """The writer thread's state: containers, codecs and the time origin."""

    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder
        self.outputs: list = []  # [(container, video stream | None, audio stream)]
        self.t0_wall: float | None = None
        self.video_codec: str | None = None
        self._video_origin: int | None = None  # RTP pts of t = 0 (video)
        self._last_video_pts = -1
        self._transcoder: _Vp8ToH264 | None = None
        self._audio: _AudioMixer | None = None
        self._audio_anchor: dict[str, tuple[int, int]] = {}  # track -> (rtp pts, samples)
        self._live_seen: tuple[int, int] | None = None  # ffmpeg's playlist: (mtime, size)
        self._published = ""

    # -- frames -----------------------------------------------------------------

    def write(self, name: str, frame: EncodedFrame, arrived: float) -> None:
        if self.t0_wall is None:
            if not self._can_start(name, frame):
                return
            self._open(frame if name == "video" else None, arrived)
        if name == "video":
            if self._transcoder is not None and frame.pts == self._video_origin:
                return  # the first keyframe: transcoded when the files were opened
            self._write_video(frame)
        else:
            self._write_audio(name, frame, arrived)

    def _can_start(self, name: str, frame: EncodedFrame) -> bool:
        if name == "video":
            return frame.keyframe
        return name == "audio" and not self.r.expect_video

    def _open(self, keyframe: EncodedFrame | None, arrived: float) -> None:
        directory = self.r.directory
        width = height = None
        extradata = b""
        pending = []  # a VP8 keyframe's first H.264 packets, muxed once the files are open
        if keyframe is not None:
            self.video_codec = keyframe.codec
            self._video_origin = keyframe.pts
            first = keyframe.data
            if keyframe.codec != "video/h264":
                self._transcoder = _Vp8ToH264(self.r.segment_seconds)
                pending = self._transcoder.transcode(keyframe.data, 0)
                if not pending:
                    raise ValueError("the first VP8 keyframe did not encode")
                first = pending[0][0]
            width, height = _h264_size(first)
            extradata = _h264_parameter_sets(first)
        mp4 = av.open(
            str(directory / RAW_MP4),
            "w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(int(self.r.segment_seconds * 1_000_000)),
                "flush_packets": "1",
            },
        )
        hls = av.open(
            str(directory / LIVE_PLAYLIST),
            "w",
            format="hls",
            options={
                # cut at each requested keyframe (they come every segment_seconds, give or take)
                "hls_time": str(round(self.r.segment_seconds * 0.9, 3)),
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
                video.time_base = VIDEO_TB
                video.codec_context.extradata = extradata
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
            audio.time_base = AUDIO_TB
            self.outputs.append((container, video, audio))
        self._audio = _AudioMixer(self._mux_audio)
        self.t0_wall = arrived
        self.r._emit(
            RecordingEvent(self.r.room_id, "started", arrived, video_codec=self.video_codec)
        )
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
            packet = av.Packet(data)
            packet.pts = packet.dts = pts
            packet.time_base = VIDEO_TB
            packet.stream = video
            packet.is_keyframe = keyframe
            container.mux(packet)

    def _write_audio(self, name: str, frame: EncodedFrame, arrived: float) -> None:
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
            copy.time_base = AUDIO_TB
            copy.stream = audio
            container.mux(copy)

    # -- the published playlist ---------------------------------------------------

    def publish_playlist(self) -> None:
        """Copy ffmpeg's playlist to ``index.m3u8`` once it lists only segments on disk.

        ffmpeg renames its playlist into place even when writing it failed (a
        full disk leaves an empty file): players only ever see a playlist that
        was checked, replaced atomically. Raises OSError if it cannot be written.
        """
        directory = self.r.directory
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
        if text == self._published or not _whole_playlist(text, directory, self._published):
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
            (self.r.directory / LIVE_PLAYLIST).unlink(missing_ok=True)

    def abort(self) -> None:
        for container, _, _ in self.outputs:
            try:
                container.close()
            except Exception:
                logger.debug("closing a failed recording's file", exc_info=True)
        self.outputs = []


def _whole_playlist(text: str, directory: Path, checked: str = "") -> bool:
    """An HLS playlist that ends with a full line and whose segments all exist, non-empty.

    Segments listed in ``checked`` (the playlist published before) are not looked at again.
    """
    if not text.startswith("#EXTM3U") or not text.endswith("\n") or "#EXTINF" not in text:
        return False
    known = set(checked.splitlines())
    for line in text.splitlines():
        if line and not line.startswith("#") and line not in known:
            try:
                if (directory / Path(line).name).stat().st_size == 0:
                    return False
            except OSError:
                return False
    return True


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` whole or not at all (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class _AudioMixer:
    """Opus → mono PCM on one timeline (main audio and the floor's voice added), → AAC.

    Each source's frames land at their own position (samples since t = 0), so
    either may be missing for a while (a camera-only host, a reconnecting phone,
    silence suppression): the other still plays, and gaps are silence. Output
    runs :data:`MIX_DELAY` behind the newest sample, so a source's frames that
    arrive a little late are still mixed in.
    """

    def __init__(self, mux: Callable[[av.Packet], None]) -> None:
        self._mux = mux
        self._decoders: dict[str, tuple] = {}
        self._mix = np.zeros(0, np.float32)  # samples from ``written`` on
        self._newest = 0  # the end of the newest frame placed, in samples
        self.written = 0  # samples handed to the encoder (the output's audio time)
        self._encoder = av.CodecContext.create("aac", "w")
        self._encoder.sample_rate = AUDIO_RATE
        self._encoder.layout = "mono"
        self._encoder.format = "fltp"
        self._encoder.bit_rate = AAC_BITRATE
        self._encoder.time_base = AUDIO_TB
        self._encoder.options = {"aac_coder": "fast"}  # speech: ~40 % less CPU, same size
        self._encoder.open()

    def add(self, source: str, data: bytes, position: int) -> int:
        """Mix ``source``'s Opus frame in at ``position``; returns how far it was moved.

        A frame far ahead of the output (a clock jump) is moved to the newest
        sample; the caller re-anchors its source by the returned shift.
        """
        decoder = self._decoders.get(source)
        if decoder is None:
            decoder = self._decoders[source] = _opus_decoder()
        pcm = _decode(decoder, data)
        if pcm.size == 0:
            return 0
        shift = 0
        if position - self.written > MAX_AHEAD:
            shift = max(self._newest, self.written) - position
            position += shift
        offset = position - self.written
        if offset < 0:  # later than the output: keep what is still to come
            pcm, offset = pcm[-offset:], 0
            if pcm.size == 0:
                return shift
        end = offset + pcm.size
        if end > self._mix.size:
            self._mix = np.concatenate([self._mix, np.zeros(end - self._mix.size, np.float32)])
        self._mix[offset:end] += pcm
        self._newest = max(self._newest, self.written + end)
        self._emit(self._newest - MIX_DELAY)
        return shift

    def _emit(self, until: int) -> None:
        while self.written + AAC_FRAME <= until and self._mix.size >= AAC_FRAME:
            self._encode(self._mix[:AAC_FRAME])
            self._mix = self._mix[AAC_FRAME:]

    def _encode(self, samples: np.ndarray | None) -> None:
        frame = None
        if samples is not None:
            frame = av.AudioFrame.from_ndarray(
                np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1),
                format="fltp",
                layout="mono",
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = self.written
            frame.time_base = AUDIO_TB
            self.written += samples.size
        for packet in self._encoder.encode(frame):
            self._mux(packet)

    def flush(self) -> None:
        self._emit(self.written + self._mix.size)
        if self._mix.size:
            pad = np.zeros(AAC_FRAME - self._mix.size, np.float32)
            self._encode(np.concatenate([self._mix, pad]))
            self._mix = np.zeros(0, np.float32)
        self._encode(None)


def _opus_decoder():
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate = AUDIO_RATE
    decoder.layout = "stereo"
    return (decoder, av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE))


def _decode(codec, data: bytes) -> np.ndarray:
    decoder, resampler = codec
    chunks = []
    try:
        frames = decoder.decode(av.Packet(data))
    except av.FFmpegError:
        return np.zeros(0, np.float32)  # a damaged packet: its 20 ms become a gap
    for frame in frames:
        for mono in resampler.resample(frame):
            chunks.append(mono.to_ndarray()[0])
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


class _Vp8ToH264:
    """Decodes VP8 and encodes H.264 once, for every viewer of the HLS and the recording."""

    def __init__(self, segment_seconds: float) -> None:
        self._decoder = av.CodecContext.create("vp8", "r")
        self._encoder = None
        self._size: tuple[int, int] | None = None
        self._keyframe_every = int(segment_seconds * 90000)
        self._next_keyframe = 0

    def transcode(self, data: bytes, pts: int):
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError:
            return []  # damaged: the picture freezes until the next good frame
        out = []
        for frame in frames:
            out.extend(self._encode(frame, pts))
        return out

    def _encode(self, frame, pts: int):
        if self._encoder is None:
            self._open_encoder(frame.width - frame.width % 2, frame.height - frame.height % 2)
        width, height = self._size
        if (frame.width, frame.height) != (width, height) or frame.format.name != "yuv420p":
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TB
        if pts >= self._next_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self._next_keyframe = pts + self._keyframe_every
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        return [(bytes(p), p.pts, p.is_keyframe) for p in self._encoder.encode(frame)]

    def _open_encoder(self, width: int, height: int) -> None:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = VIDEO_TB
        # Annex B with the parameter sets repeated at each keyframe, like a phone's H.264
        encoder.options = {"preset": "veryfast", "tune": "zerolatency", "bframes": "0"}
        encoder.open()
        self._encoder = encoder
        self._size = (width, height)

    def flush(self):
        if self._encoder is None:
            return []
        return [(bytes(p), p.pts, p.is_keyframe) for p in self._encoder.encode(None)]


# -- H.264 Annex B ----------------------------------------------------------------


def _nal_units(data: bytes):
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


def _h264_parameter_sets(keyframe: bytes) -> bytes:
    """The SPS and PPS of a keyframe (the MP4's avcC is built from them)."""
    return b"".join(
        nal if nal.startswith(b"\x00\x00\x00\x01") else b"\x00" + nal
        for kind, nal in _nal_units(keyframe)
        if kind in (7, 8)
    )


def _h264_size(keyframe: bytes) -> tuple[int, int]:
    """The picture size, by decoding the keyframe once (simpler than parsing the SPS)."""
    decoder = av.CodecContext.create("h264", "r")
    for frame in decoder.decode(av.Packet(keyframe)):
        return frame.width, frame.height
    for frame in decoder.decode(None):
        return frame.width, frame.height
    raise ValueError("the first H.264 keyframe does not decode")
