"""Every live meeting is recorded: starting, stopping, recovering and post-processing.

The glue between the media hub's recorders (files), the database's record of
them (services/recordings.py) and the clients (a transient
``recording:status`` socket.io event). Post-processing runs as background
tasks of this process, one part at a time per directory (a file lock), and
resumes after a restart.

A full recordings disk never ends a meeting and never costs what was recorded:
the recorder closes its files while they still fit, the part is kept (listed
as interrupted, with the reason), post-processing waits for space instead of
failing, and recording resumes as a new part once space is freed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlmodel import select

from media import DirectoryLock, RecordingEvent, postprocess
from media.recorder import DISK_FULL, MIN_FREE_BYTES, RESUME_FREE_BYTES, free_bytes, is_disk_full

from . import keys
from .services import recordings as store
from .services.meetings import LIVE
from .store import Meeting, Recording, utcnow

logger = logging.getLogger(__name__)

SEGMENT_SECONDS = 2.0
#: progress is written to the database at most this often per step
PROGRESS_INTERVAL = 1.0
RETENTION_SWEEP_SECONDS = 3600
#: how often a process checks that the meetings it records are still live (an /end
#: may have been handled by another process)
WATCH_SECONDS = 5.0
#: a recorder that fails mid-meeting is restarted (as a new part) at most this often
MAX_RESTARTS = 3
RESTART_DELAY = 5.0
#: while the disk is full, how often to look whether space was freed
SPACE_CHECK_SECONDS = 2.0
#: a part's ``error`` when the disk filled during it, and while its processing waits
STOPPED_DISK_FULL = "the recordings disk filled up: recorded until then"
WAITING_FOR_SPACE = "post-processing waits for free space on the recordings disk"


class Recordings:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        #: meeting id -> the part this process is recording
        self._active: dict[int, int] = {}
        self._tasks: set[asyncio.Task] = set()
        #: handlers of the recorders' events (stored before shutdown completes)
        self._handlers: set[asyncio.Task] = set()
        self._processing: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._restarts: dict[int, int] = {}
        #: meetings whose recording stopped on a full disk (resumed when space is freed)
        self._paused: set[int] = set()
        #: parts whose post-processing waits for space -> the bytes it needs free
        self._deferred: dict[int, int] = {}
        #: the disk is known to be full (logged once, until space is back)
        self.disk_full = False

    @property
    def _db(self):
        return self._app[keys.DATABASE]

    @property
    def root(self) -> Path:
        return Path(self._app[keys.SETTINGS].recordings_dir)

    def directory(self, recording: Recording) -> Path:
        return self.root / recording.directory

    def _lock(self, meeting_id: int) -> asyncio.Lock:
        return self._locks.setdefault(meeting_id, asyncio.Lock())

    # -- recording ------------------------------------------------------------------

    async def ensure_recording(self, meeting_id: int) -> None:
        """Record the live meeting in this process, unless it already is (or RECORD_MEETINGS=0).

        Called where the meeting's media lives: when the committee publishes.
        The meeting's status is read again under the lock, so a meeting that
        ended meanwhile is never recorded again.
        """
        if not self._app[keys.SETTINGS].record_meetings:
            return
        async with self._lock(meeting_id):
            if meeting_id in self._active:
                return
            if not self._has_room(RESUME_FREE_BYTES):
                # no empty part: it starts when space is back
                self._paused.add(meeting_id)
                self._note_disk_full(f"meeting {meeting_id}: recording starts once space is freed")
                return
            async with self._db.session() as db:
                meeting = await db.get(Meeting, meeting_id)
                if meeting is None or meeting.status != LIVE:
                    return
                recording = await store.new_part(db, meeting)
            directory = self.directory(recording)
            try:
                self._app[keys.MEDIA].start_recording(
                    str(meeting_id),
                    directory,
                    self._on_event(recording.id),
                    segment_seconds=SEGMENT_SECONDS,
                )
            except Exception as exc:
                logger.exception("meeting %s: recording could not start", meeting_id)
                async with self._db.session() as db:
                    await store.update(
                        db,
                        recording.id,
                        status=store.FAILED,
                        error=self.public(f"recording could not start: {exc}"),
                    )
                return
            self._active[meeting_id] = recording.id
            logger.info(
                "meeting %s: recording part %s into %s", meeting_id, recording.part, directory
            )
        await self.broadcast(meeting_id)

    async def stop_recording(self, meeting_id: int) -> None:
        """Close the meeting's files (the meeting ended); processing follows."""
        async with self._lock(meeting_id):
            if meeting_id not in self._active:
                return
            await self._app[keys.MEDIA].stop_recording(str(meeting_id))

    def _on_event(self, recording_id: int):
        def listener(event: RecordingEvent) -> None:
            task = self._spawn(self._handle(recording_id, event))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

        return listener

    async def _handle(self, recording_id: int, event: RecordingEvent) -> None:
        meeting_id = int(event.room_id)
        if event.kind == "started":
            async with self._db.session() as db:
                await store.update(
                    db,
                    recording_id,
                    started_at=datetime.fromtimestamp(event.started_at, UTC),
                    video_codec=event.video_codec or "",
                )
            await self.broadcast(meeting_id)
            return
        if event.disk_full:
            self._note_disk_full(
                f"meeting {meeting_id}: recording stopped after "
                f"{event.duration:.1f} s; it resumes as a new part once "
                "space is freed"
            )
        elif event.kind == "failed":
            logger.error("meeting %s: recording failed: %s", meeting_id, event.error)
        if event.kind == "failed" or event.disk_full:
            # detach the finished recorder from the room before anyone may start another
            await self._app[keys.MEDIA].stop_recording(event.room_id)
        if self._active.get(meeting_id) == recording_id:
            del self._active[meeting_id]
        async with self._db.session() as db:
            recording = await db.get(Recording, recording_id)
        directory = self.directory(recording) if recording is not None else None
        if recording is not None and (
            event.started_at is None or not await postprocess.has_media(directory)
        ):
            # nothing was recorded (no picture came, or the disk filled before the
            # first fragment): nothing to keep, and nothing to list as failed
            async with self._db.session() as db:
                await db.delete(await db.get(Recording, recording_id))
                await db.commit()
            _remove_unplayable(directory)
            recording = None
        elif recording is not None:
            # a writer that stopped mid-meeting left a shorter recording: it is
            # kept and listed as interrupted (with the reason), like after a crash
            async with self._db.session() as db:
                await store.update(
                    db,
                    recording_id,
                    status=store.PROCESSING,
                    ended_at=utcnow(),
                    duration=event.duration,
                    interrupted=event.kind == "failed" or event.disk_full,
                    error=STOPPED_DISK_FULL if event.disk_full else "",
                )
        if recording is not None:
            self._spawn(self.process(recording_id))
        await self.broadcast(meeting_id)
        if event.disk_full:
            self._paused.add(meeting_id)  # resumed by _watch_space
        elif event.kind == "failed":
            self._restarts[meeting_id] = self._restarts.get(meeting_id, 0) + 1
            if self._restarts[meeting_id] <= MAX_RESTARTS:
                await asyncio.sleep(RESTART_DELAY)  # a full disk does not mend in a second
                await self.ensure_recording(meeting_id)  # the rest of the meeting, a new part

    async def _watch_meetings(self) -> None:
        """Stop recording meetings that ended through another process (its /end)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if not self._active:
                continue
            try:
                async with self._db.session() as db:
                    result = await db.exec(
                        select(Meeting.id).where(
                            Meeting.id.in_(list(self._active)), Meeting.status != LIVE
                        )
                    )
                    over = list(result.all())
                for meeting_id in over:
                    logger.info("meeting %s is over: closing its recording and media", meeting_id)
                    await self.stop_recording(meeting_id)
                    await self._app[keys.MEDIA].close_room(str(meeting_id))
            except Exception:
                logger.exception("checking recorded meetings failed")

    # -- after a crash or restart ----------------------------------------------------

    async def recover(self) -> None:
        """Finish what a previous run of the server left: interrupted parts, unfinished steps.

        A part still "recording" whose directory nobody holds the lock on was
        being written by a process that died (``kill -9``): it is kept, marked
        interrupted, and processed like any other.
        """
        async with self._db.session() as db:
            leftovers = await store.unfinished(db)
        for recording in leftovers:
            if recording.meeting_id in self._active:
                continue
            directory = self.directory(recording)
            if not directory.exists():
                continue  # written on another machine (its own RECORDINGS_DIR): not ours
            if recording.status == store.RECORDING:
                lock = DirectoryLock(directory)
                if not lock.acquire():
                    continue  # another process on this machine is still writing it
                lock.release()
                async with self._db.session() as db:
                    if recording.started_at is None and not (directory / "raw.mp4").exists():
                        await db.delete(await db.get(Recording, recording.id))
                        await db.commit()
                        _remove_empty(directory)  # it never got a picture
                        continue
                    await store.update(
                        db,
                        recording.id,
                        status=store.PROCESSING,
                        interrupted=True,
                        ended_at=utcnow(),
                    )
                logger.warning(
                    "meeting %s: recording part %s was interrupted; finalising it",
                    recording.meeting_id,
                    recording.part,
                )
            self._spawn(self.process(recording.id))

    # -- post-processing -------------------------------------------------------------

    async def retry(self, recording_ids: list[int]) -> None:
        """Process failed parts again, in the background (steps already done are kept)."""
        for recording_id in recording_ids:
            async with self._db.session() as db:
                await store.update(db, recording_id, status=store.PROCESSING, error="")
            self._spawn(self.process(recording_id))  # broadcasts as each step starts

    async def process(self, recording_id: int) -> None:
        """Run the post-processing steps that are not done yet; idempotent."""
        if recording_id in self._processing:
            return
        self._processing.add(recording_id)
        try:
            await self._process(recording_id)
        finally:
            self._processing.discard(recording_id)

    async def _process(self, recording_id: int) -> None:
        async with self._db.session() as db:
            recording = await db.get(Recording, recording_id)
            if recording is None:
                return
        directory = self.directory(recording)
        if not directory.exists():
            async with self._db.session() as db:
                await store.update(
                    db, recording_id, status=store.FAILED, error="the recording's files are missing"
                )
            await self.broadcast(recording.meeting_id)
            return
        lock = DirectoryLock(directory)
        if not lock.acquire():
            return  # its writer, or another process's post-processing, holds it
        waited = self._deferred.pop(recording_id, None)
        try:
            postprocess.remove_temporary(directory)  # half-made files of a run that died
            failed = await self._run_steps(recording, directory)
        except postprocess.DiskFull as exc:
            failed = None
            self._deferred[recording_id] = exc.needed or RESUME_FREE_BYTES
            if waited is None:  # said once per part, not at every look
                logger.warning(
                    "meeting %s: post-processing of recording part %s waits for space: %s",
                    recording.meeting_id,
                    recording.part,
                    exc,
                )
        finally:
            lock.release()
        if failed is None:
            # not a failure: the part plays (HLS) and is processed once there is room
            async with self._db.session() as db:
                current = await db.get(Recording, recording_id, populate_existing=True)
                reason = WAITING_FOR_SPACE
                if (current.error or "").startswith(STOPPED_DISK_FULL):
                    reason = f"{STOPPED_DISK_FULL}; {WAITING_FOR_SPACE}"
                await store.update(db, recording_id, status=store.PROCESSING, error=reason)
            await self.broadcast(recording.meeting_id)
            return
        async with self._db.session() as db:
            recording = await db.get(Recording, recording_id, populate_existing=True)
            if failed:
                status, error = store.FAILED, failed
            else:
                status = store.INTERRUPTED if recording.interrupted else store.READY
                # a part the disk cut short keeps saying so
                cut_short = (recording.error or "").startswith(STOPPED_DISK_FULL)
                error = STOPPED_DISK_FULL if cut_short else ""
            duration = await postprocess.duration_of(directory / postprocess.MP4)
            await store.update(
                db,
                recording_id,
                status=status,
                error=error,
                duration=duration or recording.duration,
            )
        logger.info(
            "meeting %s: recording part %s %s", recording.meeting_id, recording.part, status
        )
        await self.broadcast(recording.meeting_id)

    async def _run_steps(self, recording: Recording, directory: Path) -> str:
        """Each step in order; returns "" or the first failure's reason (raw files are kept)."""
        duration = recording.duration
        done = {
            name for name, step in (recording.steps or {}).items() if step.get("status") == "done"
        }
        for name in postprocess.STEPS:
            if name in done and name != "thumbnails":
                continue  # files are checked again anyway; the database says done
            reporter = _Progress(self, recording.id, recording.meeting_id, name)
            async with self._db.session() as db:
                await store.set_step(db, recording.id, name, "running", 0.0)
            await self.broadcast(recording.meeting_id)
            try:
                if name == "hls":
                    postprocess.ensure_room(directory, 64 * 1024)
                    postprocess.close_playlist(directory)
                elif name == "mp4":
                    await postprocess.faststart_mp4(directory, duration, reporter)
                    duration = await postprocess.duration_of(directory / postprocess.MP4)
                    async with self._db.session() as db:
                        await store.update(db, recording.id, duration=duration)
                        recording = await db.get(Recording, recording.id)
                elif name == "audio":
                    await postprocess.audio_only(directory, duration, reporter)
                else:
                    async with self._db.session() as db:
                        moments = await store.agenda_moments(db, recording)
                    await postprocess.thumbnails(directory, moments, reporter)
            except Exception as exc:  # ffmpeg's refusal, a missing binary, a full disk
                if isinstance(exc, postprocess.DiskFull) or is_disk_full(exc):
                    await reporter.settle()
                    async with self._db.session() as db:  # not started: "waiting" again
                        await store.clear_step(db, recording.id, name)
                    if isinstance(exc, postprocess.DiskFull):
                        raise
                    raise postprocess.DiskFull(str(exc)) from exc
                logger.error(
                    "meeting %s: recording step %s failed: %s", recording.meeting_id, name, exc
                )
                reason = self.public(str(exc) or type(exc).__name__)
                await reporter.settle()
                async with self._db.session() as db:
                    await store.set_step(db, recording.id, name, "failed", None, reason)
                return f"{name}: {reason}"
            await reporter.settle()  # a late progress write must not land after "done"
            async with self._db.session() as db:
                await store.set_step(db, recording.id, name, "done", 1.0)
        return ""

    def public(self, message: str) -> str:
        """An error for clients: no server paths (those stay in the log)."""
        return message.replace(str(self.root.resolve()), "recordings").replace(
            str(self.root), "recordings"
        )[:500]

    # -- retention ---------------------------------------------------------------------

    async def sweep_retention(self) -> int:
        """Delete the media of recordings older than RECORDINGS_RETENTION_DAYS; returns how many.

        Only the media files go: the part stays listed as expired, and the
        meeting's minutes, events and votes are untouched.
        """
        days = self._app[keys.SETTINGS].recordings_retention_days
        if days <= 0:
            return 0
        async with self._db.session() as db:
            old = await store.past_retention(db, days)
        removed = 0
        loop = asyncio.get_running_loop()
        for recording in old:
            directory = self.directory(recording)
            if not directory.exists():
                continue  # another machine's (its own RECORDINGS_DIR): it expires them
            lock = DirectoryLock(directory)
            if not lock.acquire():
                continue
            try:
                # gigabytes: unlinked off the event loop that forwards live media
                await loop.run_in_executor(None, _remove_media, directory)
            finally:
                lock.release()
            _remove_empty(directory)
            async with self._db.session() as db:
                await store.update(db, recording.id, status=store.EXPIRED)
            removed += 1
            logger.info(
                "meeting %s: recording part %s expired (older than %s days)",
                recording.meeting_id,
                recording.part,
                days,
            )
        return removed

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.sweep_retention()
            except Exception:
                logger.exception("recording retention sweep failed")
            await asyncio.sleep(RETENTION_SWEEP_SECONDS)

    # -- clients -----------------------------------------------------------------------

    async def broadcast(self, meeting_id: int) -> None:
        """Tell the meeting's clients how its recording stands (host page, replay page)."""
        from .http.recordings import describe  # the URLs are HTTP's business

        async with self._db.session() as db:
            found = await store.parts(db, meeting_id)
        if not found:
            return
        payload = describe(self._app, meeting_id, found)
        await self._app[keys.REALTIME].emit_transient("recording:status", payload, meeting_id)

    # -- a full disk -------------------------------------------------------------------

    def _has_room(self, needed: int = MIN_FREE_BYTES) -> bool:
        try:
            return free_bytes(self.root) >= needed
        except OSError:
            return False

    def _note_disk_full(self, what: str) -> None:
        """Warn once per episode (not once per part, step or frame)."""
        if not self.disk_full:
            self.disk_full = True
            logger.warning("%s in %s: %s", DISK_FULL, self.root, what)
        else:
            logger.info("%s", what)

    async def _watch_space(self) -> None:
        """Once space is freed: resume paused meetings (as new parts) and deferred processing."""
        while True:
            await asyncio.sleep(SPACE_CHECK_SECONDS)
            if not (self._paused or self._deferred or self.disk_full):
                continue
            try:
                free = free_bytes(self.root)
                if free >= RESUME_FREE_BYTES and (self.disk_full or self._paused):
                    if self.disk_full:
                        logger.warning(
                            "the recordings disk has space again (%s MiB free in "
                            "%s): recording resumes",
                            free >> 20,
                            self.root,
                        )
                        self.disk_full = False
                    paused, self._paused = self._paused, set()
                    for meeting_id in paused:
                        await self.ensure_recording(meeting_id)
                for recording_id, needed in list(self._deferred.items()):
                    if free >= needed:
                        self._spawn(self.process(recording_id))
            except Exception:
                logger.exception("resuming after a full disk failed")

    def check_disk(self) -> str:
        """Why recordings cannot be written now; empty if they can (or recording is off).

        A small write, not only the free-space figure: a read-only mount or a
        quota shows too. Blocking: run it in an executor.
        """
        if not self._app[keys.SETTINGS].record_meetings:
            return ""
        root = self.root
        try:
            free = free_bytes(root)
            # full: too little to record, or too little to resume a recording it stopped
            if free < MIN_FREE_BYTES or (self.disk_full and free < RESUME_FREE_BYTES):
                return f"full ({free // 1024} KiB free)"
            probe = root / f".health-{os.getpid()}"
            try:
                with open(probe, "wb") as file:
                    file.write(b"\0" * 4096)
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            if is_disk_full(exc):
                return "full"
            return f"not writable ({exc.strerror or exc})"
        return ""

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("recording task failed", exc_info=task.exception())

    async def startup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        await self.recover()
        self._spawn(self._retention_loop())
        self._spawn(self._watch_meetings())
        self._spawn(self._watch_space())

    async def close(self) -> None:
        """Shutdown: close every file this process writes; unfinished work resumes at startup."""
        stopping = list(self._active)
        for meeting_id in stopping:
            await self.stop_recording(meeting_id)
        if stopping:
            # let the "stopped" events be stored (their handlers are spawned by the
            # recorder's call_soon_threadsafe); post-processing resumes at the next start
            await asyncio.sleep(0.05)
            handlers = [t for t in self._handlers if not t.done()]
            if handlers:
                await asyncio.wait(handlers, timeout=2.0)
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _remove_media(directory: Path) -> None:
    for path in directory.iterdir():
        if path.name != ".lock":
            path.unlink()


class _Progress:
    """A step's progress, written at most every PROGRESS_INTERVAL while it runs."""

    def __init__(self, owner: Recordings, recording_id: int, meeting_id: int, step: str) -> None:
        self._owner, self._id, self._meeting, self._step = owner, recording_id, meeting_id, step
        self._last = 0.0
        self._pending: asyncio.Task | None = None

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL or (self._pending and not self._pending.done()):
            return
        self._last = now
        self._pending = asyncio.ensure_future(self._save(fraction))

    async def _save(self, fraction: float) -> None:
        try:
            async with self._owner._db.session() as db:
                await store.set_step(db, self._id, self._step, "running", fraction)
            await self._owner.broadcast(self._meeting)
        except Exception:
            logger.debug("saving progress failed", exc_info=True)

    async def settle(self) -> None:
        """Wait for the last progress write, so "done" or "failed" is written after it."""
        if self._pending is not None:
            await asyncio.gather(self._pending, return_exceptions=True)


def _remove_unplayable(directory: Path) -> None:
    """Remove a part's files that hold no media (checked by the caller), then the folder."""
    try:
        for path in directory.iterdir():
            if path.name != ".lock":
                path.unlink(missing_ok=True)
    except OSError:
        pass
    _remove_empty(directory)


def _remove_empty(directory: Path) -> None:
    """Remove a part's directory if only the lock file is left (best effort)."""
    try:
        for path in directory.iterdir():
            if path.name != ".lock":
                return
        (directory / ".lock").unlink(missing_ok=True)
        directory.rmdir()
    except OSError:
        pass
