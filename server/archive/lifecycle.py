"""Recording a live meeting: started when a publisher comes, stopped when the meeting ends.

The media hub's room events start it (:meth:`Lifecycle.on_room_event`): wherever a
live meeting's publisher is negotiated, that process records it, again after a restart
(as a new part). The recorder is ready before the publisher's first frame, so the
recording begins with the first picture. The recorder's own events are stored (the
part's t = 0, its end) and told to the meeting's clients; a part that got no picture is
forgotten, one cut short is kept, and post-processing follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import col, select

from media import RecordingEvent, RoomEvent, postprocess
from media.files import RESUME_FREE_BYTES

from ..services import replays
from ..services.meetings import LIVE
from ..store import Meeting, Recording, pk, utcnow
from .base import Context
from .disk import STOPPED_DISK_FULL, remove_unplayable
from .postprocessing import PostProcessing

logger = logging.getLogger(__name__)

SEGMENT_SECONDS = 2.0
#: how often a process checks that the meetings it records are still live (an /end
#: may have been handled by another process)
WATCH_SECONDS = 5.0
#: a recorder that fails mid-meeting is restarted (as a new part) at most this often
MAX_RESTARTS = 3
RESTART_DELAY = 5.0
#: a recording that could not start (e.g. the database was briefly unavailable) is
#: tried this many times in all while its publisher is there
START_TRIES = 3


class Lifecycle:
    def __init__(self, ctx: Context, processing: PostProcessing) -> None:
        self._ctx = ctx
        self._processing = processing
        #: meeting id -> the part this process is recording
        self.active: dict[int, int] = {}
        #: handlers of the recorders' events (stored before shutdown completes)
        self._handlers: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._restarts: dict[int, int] = {}
        #: meeting id -> its publisher sessions in this process (room events)
        self._publishers: dict[int, int] = {}
        self._closing = False

    @property
    def paused(self) -> set[int]:
        """Meetings whose recording stopped on a full disk (resumed when space is freed)."""
        return self._ctx.paused

    @paused.setter
    def paused(self, meetings: set[int]) -> None:
        self._ctx.paused = meetings

    def _lock(self, meeting_id: int) -> asyncio.Lock:
        return self._locks.setdefault(meeting_id, asyncio.Lock())

    def on_room_event(self, event: RoomEvent) -> None:
        """Media hub listener: each new publisher session is recorded (where it is).

        As when a WHIP request started it: a host who publishes again (another
        device, a new connection) gets the recording back if it had stopped.
        """
        if not event.room_id.isdigit():
            return
        meeting_id = int(event.room_id)
        before = self._publishers.get(meeting_id, 0)
        if event.publishers:
            self._publishers[meeting_id] = event.publishers
        else:
            self._publishers.pop(meeting_id, None)
        if event.publishers > before and not self._closing:
            self._ctx.spawn(self._start(meeting_id))

    async def _start(self, meeting_id: int) -> None:
        """``ensure_recording``, tried again after a failure while the publisher is there."""
        for attempt in range(1, START_TRIES + 1):
            try:
                await self.ensure_recording(meeting_id)
                return
            except Exception:
                logger.exception(
                    "meeting %s: recording could not start (try %s of %s)",
                    meeting_id,
                    attempt,
                    START_TRIES,
                )
            if attempt == START_TRIES:
                return
            await asyncio.sleep(RESTART_DELAY)
            if self._closing or meeting_id not in self._publishers:
                return

    async def ensure_recording(self, meeting_id: int) -> None:
        """Record the live meeting in this process, unless it already is (or RECORD_MEETINGS=0).

        The meeting's status is read again under the lock, so a meeting that
        ended meanwhile is never recorded again.
        """
        ctx = self._ctx
        if not ctx.settings.record_meetings:
            return
        async with self._lock(meeting_id):
            if meeting_id in self.active:
                return
            if not ctx.disk.has_room(RESUME_FREE_BYTES):
                # no empty part: it starts when space is back
                self.paused.add(meeting_id)
                ctx.disk.note_full(f"meeting {meeting_id}: recording starts once space is freed")
                ctx.spawn(ctx.broadcast(meeting_id))  # the host page: "Disk full: …paused"
                return
            async with ctx.db.session() as db:
                meeting = await db.get(Meeting, meeting_id)
                if meeting is None or meeting.status != LIVE:
                    return
                recording = await replays.new_part(db, meeting)
            directory = ctx.directory(recording)
            try:
                ctx.media.start_recording(
                    str(meeting_id),
                    directory,
                    self._on_event(pk(recording)),
                    segment_seconds=SEGMENT_SECONDS,
                    low_rendition=ctx.settings.hls_low_rendition,
                )
            except Exception as exc:
                logger.exception("meeting %s: recording could not start", meeting_id)
                async with ctx.db.session() as db:
                    await replays.update(
                        db,
                        pk(recording),
                        status=replays.FAILED,
                        error=ctx.public(f"recording could not start: {exc}"),
                    )
                return
            self.active[meeting_id] = pk(recording)
            logger.info(
                "meeting %s: recording part %s into %s", meeting_id, recording.part, directory
            )
        await ctx.broadcast(meeting_id)

    async def stop_recording(self, meeting_id: int) -> None:
        """Close the meeting's files (the meeting ended); processing follows."""
        self.paused.discard(meeting_id)  # an ended meeting waits for no space
        async with self._lock(meeting_id):
            if meeting_id not in self.active:
                return
            await self._ctx.media.stop_recording(str(meeting_id))

    def _on_event(self, recording_id: int) -> Callable[[RecordingEvent], None]:
        def listener(event: RecordingEvent) -> None:
            task = self._ctx.spawn(self._handle(recording_id, event))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

        return listener

    async def _handle(self, recording_id: int, event: RecordingEvent) -> None:
        ctx = self._ctx
        meeting_id = int(event.room_id)
        if event.kind == "started":
            started = event.started_at
            async with ctx.db.session() as db:
                await replays.update(
                    db,
                    recording_id,
                    started_at=datetime.fromtimestamp(started, UTC) if started else None,
                    video_codec=event.video_codec or "",
                )
            await ctx.broadcast(meeting_id)
            return
        if event.disk_full:
            ctx.disk.note_full(
                f"meeting {meeting_id}: recording stopped after "
                f"{event.duration:.1f} s; it resumes as a new part once "
                "space is freed"
            )
        elif event.kind == "failed":
            logger.error("meeting %s: recording failed: %s", meeting_id, event.error)
        if event.kind == "failed" or event.disk_full:
            # detach the finished recorder from the room before anyone may start another
            await ctx.media.stop_recording(event.room_id)
        if self.active.get(meeting_id) == recording_id:
            del self.active[meeting_id]
        if await self._keep(recording_id, event):
            self._processing.start(recording_id)
        if event.disk_full:
            self.paused.add(meeting_id)  # resumed once space is freed (told with the status)
        await ctx.broadcast(meeting_id)
        if event.kind == "failed" and not event.disk_full:
            self._restarts[meeting_id] = self._restarts.get(meeting_id, 0) + 1
            if self._restarts[meeting_id] <= MAX_RESTARTS:
                await asyncio.sleep(RESTART_DELAY)  # a full disk does not mend in a second
                await self.ensure_recording(meeting_id)  # the rest of the meeting, a new part

    async def _keep(self, recording_id: int, event: RecordingEvent) -> bool:
        """Store a closed part for post-processing; False if it holds nothing (forgotten)."""
        ctx = self._ctx
        async with ctx.db.session() as db:
            recording = await db.get(Recording, recording_id)
            if recording is None:
                return False
        directory = ctx.directory(recording)
        if event.started_at is None or not await postprocess.has_media(directory):
            # nothing was recorded (no picture came, or the disk filled before the
            # first fragment): nothing to keep, and nothing to list as failed
            async with ctx.db.session() as db:
                gone = await db.get(Recording, recording_id)
                if gone is not None:
                    await db.delete(gone)
                    await db.commit()
            remove_unplayable(directory)
            return False
        # a writer that stopped mid-meeting left a shorter recording: it is
        # kept and listed as interrupted (with the reason), like after a crash
        async with ctx.db.session() as db:
            await replays.update(
                db,
                recording_id,
                status=replays.PROCESSING,
                ended_at=utcnow(),
                duration=event.duration,
                interrupted=event.kind == "failed" or event.disk_full,
                error=STOPPED_DISK_FULL if event.disk_full else "",
            )
        return True

    async def watch_meetings(self) -> None:
        """Stop recording meetings that ended through another process (its /end)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if not self.active:
                continue
            try:
                async with self._ctx.db.session() as db:
                    result = await db.exec(
                        select(Meeting.id).where(
                            col(Meeting.id).in_(list(self.active)), Meeting.status != LIVE
                        )
                    )
                    over = [meeting_id for meeting_id in result.all() if meeting_id is not None]
                for meeting_id in over:
                    logger.info("meeting %s is over: closing its recording and media", meeting_id)
                    await self.stop_recording(meeting_id)
                    await self._ctx.media.close_room(str(meeting_id))
            except Exception:
                logger.exception("checking recorded meetings failed")

    async def close(self) -> None:
        """Shutdown: close every file this process writes, and store what the recorders say."""
        self._closing = True
        stopping = list(self.active)
        for meeting_id in stopping:
            await self.stop_recording(meeting_id)
        if stopping:
            # let the "stopped" events be stored (their handlers are spawned by the
            # recorder's call_soon_threadsafe); post-processing resumes at the next start
            await asyncio.sleep(0.05)
            handlers = [t for t in self._handlers if not t.done()]
            if handlers:
                await asyncio.wait(handlers, timeout=2.0)
