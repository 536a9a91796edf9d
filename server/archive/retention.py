"""Retention: the media of recordings older than RECORDINGS_RETENTION_DAYS is deleted.

Only the media files go: the part stays listed as expired, and the meeting's
minutes, events and votes are untouched.
"""

from __future__ import annotations

import asyncio
import logging

from media import DirectoryLock

from ..services import replays
from ..store import pk
from .base import Context
from .disk import remove_empty, remove_media

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3600


async def sweep(ctx: Context) -> int:
    """Delete the media of recordings past retention; returns how many parts expired."""
    days = ctx.settings.recordings_retention_days
    if days <= 0:
        return 0
    async with ctx.db.session() as db:
        old = await replays.past_retention(db, days)
    removed = 0
    loop = asyncio.get_running_loop()
    for recording in old:
        directory = ctx.directory(recording)
        if not directory.exists():
            continue  # another machine's (its own RECORDINGS_DIR): it expires them
        lock = DirectoryLock(directory)
        if not lock.acquire():
            continue
        try:
            # gigabytes: unlinked off the event loop that forwards live media
            await loop.run_in_executor(None, remove_media, directory)
        finally:
            lock.release()
        remove_empty(directory)
        async with ctx.db.session() as db:
            await replays.update(db, pk(recording), status=replays.EXPIRED)
        removed += 1
        logger.info(
            "meeting %s: recording part %s expired (older than %s days)",
            recording.meeting_id,
            recording.part,
            days,
        )
    return removed


async def sweep_forever(ctx: Context) -> None:
    while True:
        try:
            await sweep(ctx)
        except Exception:
            logger.exception("recording retention sweep failed")
        await asyncio.sleep(SWEEP_SECONDS)
