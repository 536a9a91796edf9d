"""Post-processing of a closed part: HLS closed, MP4 made fast-start, audio only, thumbnails.

Runs as background tasks of this process, one part at a time per directory (a
file lock), step by step: a step already done is not redone, so it resumes
after a restart and a retry. A full disk is not a failure: the part plays (HLS)
and is processed once there is room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from media import DirectoryLock, postprocess
from media.files import RESUME_FREE_BYTES, is_disk_full

from ..services import replays
from ..store import Recording, pk
from .base import Context
from .disk import STOPPED_DISK_FULL, WAITING_FOR_SPACE

logger = logging.getLogger(__name__)

#: progress is written to the database at most this often per step
PROGRESS_INTERVAL = 1.0


class PostProcessing:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        #: parts being processed by this process
        self._processing: set[int] = set()
        #: parts whose post-processing waits for space -> the bytes it needs free
        self.deferred: dict[int, int] = {}

    def start(self, recording_id: int) -> None:
        """Process the part in the background."""
        self._ctx.spawn(self.process(recording_id))

    async def retry(self, recording_ids: list[int]) -> None:
        """Process failed parts again, in the background (steps already done are kept)."""
        for recording_id in recording_ids:
            async with self._ctx.db.session() as db:
                await replays.update(db, recording_id, status=replays.PROCESSING, error="")
            self.start(recording_id)  # broadcasts as each step starts

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
        ctx = self._ctx
        async with ctx.db.session() as db:
            recording = await db.get(Recording, recording_id)
            if recording is None:
                return
        directory = ctx.directory(recording)
        if not directory.exists():
            async with ctx.db.session() as db:
                await replays.update(
                    db,
                    recording_id,
                    status=replays.FAILED,
                    error="the recording's files are missing",
                )
            await ctx.broadcast(recording.meeting_id)
            return
        lock = DirectoryLock(directory)
        if not lock.acquire():
            return  # its writer, or another process's post-processing, holds it
        waited = self.deferred.pop(recording_id, None)
        failed: str | None
        try:
            postprocess.remove_temporary(directory)  # half-made files of a run that died
            failed = await self._run_steps(recording, directory)
        except postprocess.DiskFull as exc:
            failed = None
            self.deferred[recording_id] = exc.needed or RESUME_FREE_BYTES
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
            await self._wait_for_space(recording)
        else:
            await self._finish(recording, failed, directory)
        await ctx.broadcast(recording.meeting_id)

    async def _wait_for_space(self, recording: Recording) -> None:
        """Not a failure: the part plays (HLS) and is processed once there is room."""
        async with self._ctx.db.session() as db:
            current = await db.get(Recording, pk(recording), populate_existing=True)
            reason = WAITING_FOR_SPACE
            if current is not None and (current.error or "").startswith(STOPPED_DISK_FULL):
                reason = f"{STOPPED_DISK_FULL}; {WAITING_FOR_SPACE}"
            await replays.update(db, pk(recording), status=replays.PROCESSING, error=reason)

    async def _finish(self, recording: Recording, failed: str, directory: Path) -> None:
        """Store the part's outcome: failed (with the first failure's reason), or done."""
        async with self._ctx.db.session() as db:
            current = await db.get(Recording, pk(recording), populate_existing=True)
            if current is None:
                return
            if failed:
                status, error = replays.FAILED, failed
            else:
                status = replays.INTERRUPTED if current.interrupted else replays.READY
                # a part the disk cut short keeps saying so
                cut_short = (current.error or "").startswith(STOPPED_DISK_FULL)
                error = STOPPED_DISK_FULL if cut_short else ""
            duration = await postprocess.duration_of(directory / postprocess.MP4)
            await replays.update(
                db,
                pk(current),
                status=status,
                error=error,
                duration=duration or current.duration,
            )
        logger.info(
            "meeting %s: recording part %s %s", recording.meeting_id, recording.part, status
        )

    async def _run_steps(self, recording: Recording, directory: Path) -> str:
        """Each step in order; returns "" or the first failure's reason (raw files are kept)."""
        ctx = self._ctx
        recording_id = pk(recording)
        duration = recording.duration
        done = {
            name for name, step in (recording.steps or {}).items() if step.get("status") == "done"
        }
        for name in postprocess.STEPS:
            if name in done and name != "thumbnails":
                continue  # files are checked again anyway; the database says done
            reporter = _Progress(ctx, recording_id, recording.meeting_id, name)
            async with ctx.db.session() as db:
                await replays.set_step(db, recording_id, name, "running", 0.0)
            await ctx.broadcast(recording.meeting_id)
            try:
                if name == "hls":
                    postprocess.ensure_room(directory, 64 * 1024)
                    postprocess.close_playlist(directory)
                elif name == "mp4":
                    await postprocess.faststart_mp4(directory, duration, reporter)
                    duration = await postprocess.duration_of(directory / postprocess.MP4)
                    async with ctx.db.session() as db:
                        recording = (
                            await replays.update(db, recording_id, duration=duration) or recording
                        )
                elif name == "audio":
                    await postprocess.audio_only(directory, duration, reporter)
                else:
                    async with ctx.db.session() as db:
                        moments = await replays.agenda_moments(db, recording)
                    await postprocess.thumbnails(directory, moments, reporter)
            except Exception as exc:  # ffmpeg's refusal, a missing binary, a full disk
                await reporter.settle()
                if isinstance(exc, postprocess.DiskFull) or is_disk_full(exc):
                    async with ctx.db.session() as db:  # not started: "waiting" again
                        await replays.clear_step(db, recording_id, name)
                    if isinstance(exc, postprocess.DiskFull):
                        raise
                    raise postprocess.DiskFull(str(exc)) from exc
                logger.error(
                    "meeting %s: recording step %s failed: %s", recording.meeting_id, name, exc
                )
                reason = ctx.public(str(exc) or type(exc).__name__)
                async with ctx.db.session() as db:
                    await replays.set_step(db, recording_id, name, "failed", None, reason)
                return f"{name}: {reason}"
            await reporter.settle()  # a late progress write must not land after "done"
            async with ctx.db.session() as db:
                await replays.set_step(db, recording_id, name, "done", 1.0)
        return ""


class _Progress:
    """A step's progress, written at most every PROGRESS_INTERVAL while it runs."""

    def __init__(self, ctx: Context, recording_id: int, meeting_id: int, step: str) -> None:
        self._ctx, self._id, self._meeting, self._step = ctx, recording_id, meeting_id, step
        self._last = 0.0
        self._pending: asyncio.Future[None] | None = None

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL or (self._pending and not self._pending.done()):
            return
        self._last = now
        self._pending = asyncio.ensure_future(self._save(fraction))

    async def _save(self, fraction: float) -> None:
        try:
            async with self._ctx.db.session() as db:
                await replays.set_step(db, self._id, self._step, "running", fraction)
            await self._ctx.broadcast(self._meeting)
        except Exception:
            logger.debug("saving progress failed", exc_info=True)

    async def settle(self) -> None:
        """Wait for the last progress write, so "done" or "failed" is written after it."""
        if self._pending is not None:
            await asyncio.gather(self._pending, return_exceptions=True)
