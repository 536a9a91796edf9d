"""After a crash or restart: finish what a previous run of the server left."""

from __future__ import annotations

import logging
from collections.abc import Container

from media import DirectoryLock

from ..services import replays
from ..store import Recording, pk, utcnow
from .base import Context
from .disk import remove_empty
from .postprocessing import PostProcessing

logger = logging.getLogger(__name__)


async def recover(ctx: Context, recording_now: Container[int], processing: PostProcessing) -> None:
    """Interrupted parts are kept and processed; unfinished steps are run.

    A part still "recording" whose directory nobody holds the lock on was
    being written by a process that died (``kill -9``): it is kept, marked
    interrupted, and processed like any other. ``recording_now``: the meetings
    this process records (their parts are not leftovers).
    """
    async with ctx.db.session() as db:
        leftovers = await replays.unfinished(db)
    for recording in leftovers:
        if recording.meeting_id in recording_now:
            continue
        directory = ctx.directory(recording)
        if not directory.exists():
            continue  # written on another machine (its own RECORDINGS_DIR): not ours
        if recording.status == replays.RECORDING:
            lock = DirectoryLock(directory)
            if not lock.acquire():
                continue  # another process on this machine is still writing it
            lock.release()
            async with ctx.db.session() as db:
                if recording.started_at is None and not (directory / "raw.mp4").exists():
                    gone = await db.get(Recording, pk(recording))
                    if gone is not None:
                        await db.delete(gone)
                        await db.commit()
                    remove_empty(directory)  # it never got a picture
                    continue
                await replays.update(
                    db,
                    pk(recording),
                    status=replays.PROCESSING,
                    interrupted=True,
                    ended_at=utcnow(),
                )
            logger.warning(
                "meeting %s: recording part %s was interrupted; finalising it",
                recording.meeting_id,
                recording.part,
            )
        processing.start(pk(recording))
