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
the fan-outs only put frames on a queue (:meth:`Recorder.tap`); the writer
thread (:class:`~media.writer.Writer`) does the rest.

Time: the output starts (t = 0) at the first video keyframe (the first audio
frame for an audio-only publisher); every track is placed by its frames' RTP
time, anchored to the wall clock at its first frame, so the recording's time
and the wall clock agree (``on_event`` reports the wall time of t = 0).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .encoded import EncodedFrame
from .files import DISK_FULL, MIN_FREE_BYTES, DirectoryLock, free_bytes, is_disk_full
from .writer import Writer

logger = logging.getLogger(__name__)

#: the queue between the fan-outs and the writer (~25 s of frames): beyond it
#: frames are dropped rather than let memory grow behind a stalled disk
MAX_QUEUED = 2000
#: the writer sleeps this long between batches of queued frames
BATCH_SECONDS = 0.1


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


class Recorder:
    """Writes one room to ``directory``: a fragmented MP4 and a live HLS playlist.

    Create it, :meth:`start` it, feed it with :meth:`tap` from the event loop,
    and :meth:`stop` it. ``expect_video`` False starts the output at the first
    audio frame instead of waiting for a picture. ``low_rendition`` False
    makes no low video rendition (read when the files open, at the first frame:
    it may be set after :meth:`start`).
    """

    def __init__(
        self,
        room_id: str,
        directory: Path,
        on_event: Callable[[RecordingEvent], None],
        *,
        segment_seconds: float = 2.0,
        expect_video: bool = True,
        low_rendition: bool = True,
    ) -> None:
        self.room_id = room_id
        self.low_rendition = low_rendition
        self.directory = Path(directory)
        self.segment_seconds = segment_seconds
        self.expect_video = expect_video
        self._on_event = on_event
        #: (source name, frame, arrival time), or None to stop
        self._queue: queue.SimpleQueue[tuple[str, EncodedFrame, float] | None] = queue.SimpleQueue()
        self.dropped = 0
        self._skip_to_keyframe = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = DirectoryLock(self.directory)
        self._done = threading.Event()
        self.writer: Writer | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._lock.acquire():
            raise RuntimeError(f"{self.directory} is being written by another process")
        self._loop = asyncio.get_running_loop()
        self.writer = Writer(
            self.directory, self.segment_seconds, self._started, name=f"recorder-{self.room_id}"
        )
        self._thread = threading.Thread(
            target=self._run, args=(self.writer,), name=f"recorder-{self.room_id}", daemon=True
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

    def _started(self, t0_wall: float, video_codec: str | None) -> None:
        self._emit(RecordingEvent(self.room_id, "started", t0_wall, video_codec=video_codec))

    def _run(self, writer: Writer) -> None:
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
                    if writer.t0_wall is None:
                        writer.low_rendition = self.low_rendition
                    writer.write(*item, expect_video=self.expect_video)
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
            event = self._ended(writer, "stopped", DISK_FULL if disk_full else "", disk_full)
        except Exception as exc:
            full = is_disk_full(exc)
            if full:
                # one line, no traceback: the owner says what it means for the meeting
                logger.info("recording of room %s stopped: %s (%s)", self.room_id, DISK_FULL, exc)
            else:
                logger.exception("recording of room %s failed", self.room_id)
            writer.abort()
            event = self._ended(writer, "failed", DISK_FULL if full else str(exc), full)
        finally:
            # the folder is free before anyone hears it is: post-processing takes the lock
            self._lock.release()
        self._emit(event)
        self._done.set()

    def _ended(self, writer: Writer, kind: str, error: str, disk_full: bool) -> RecordingEvent:
        return RecordingEvent(
            self.room_id,
            kind,
            writer.t0_wall,
            writer.duration(),
            writer.video_codec,
            error=error,
            disk_full=disk_full,
        )
