"""The archive: every live meeting is recorded, post-processed, kept, and expired.

The glue between the media hub's recorders (files), the database's record of
them (``services/replays.py``) and the clients (a transient ``recording:status``
socket.io event). One job per module:

- ``lifecycle``: recording starts when a live meeting's publisher goes on the air
  (the media hub's room events) and stops when the meeting ends;
- ``postprocessing``: each closed part's steps, in the background, resumable;
- ``recovery``: at startup, what a previous run left (a ``kill -9``'s parts);
- ``retention``: media older than RECORDINGS_RETENTION_DAYS is deleted;
- ``disk``: a full recordings disk (see there) never ends a meeting;
- ``base``: what they share (database, media hub, directory, background tasks).
"""

from __future__ import annotations

import asyncio
import logging

from media import MediaHub, RoomEvent
from media.files import RESUME_FREE_BYTES

from ..settings import Settings
from ..store import Database
from . import retention
from .base import Context, Emit
from .lifecycle import Lifecycle
from .postprocessing import PostProcessing
from .recovery import recover

logger = logging.getLogger(__name__)

#: while the disk is full, how often to look whether space was freed
SPACE_CHECK_SECONDS = 2.0


class Archive:
    """The recordings of this process: made in ``create_app``, started with the app.

    ``emit(event, payload, meeting_id)`` tells a meeting's clients something
    that is not stored (``recording:status``).
    """

    def __init__(self, settings: Settings, emit: Emit) -> None:
        self._ctx = Context(settings, emit)
        self.postprocessing = PostProcessing(self._ctx)
        self.lifecycle = Lifecycle(self._ctx, self.postprocessing)

    async def startup(self, database: Database, media: MediaHub) -> None:
        ctx = self._ctx
        ctx.attach(database, media)
        ctx.root.mkdir(parents=True, exist_ok=True)
        await recover(ctx, self.lifecycle.active, self.postprocessing)
        ctx.spawn(retention.sweep_forever(ctx))
        ctx.spawn(self.lifecycle.watch_meetings())
        ctx.spawn(self._watch_space())

    async def close(self) -> None:
        """Shutdown: close every file this process writes; unfinished work resumes at startup."""
        await self.lifecycle.close()
        await self._ctx.cancel_tasks()

    # -- what the rest of the server calls ---------------------------------------------

    def on_room_event(self, event: RoomEvent) -> None:
        """Media hub listener: a live meeting's publisher on the air is recorded."""
        self.lifecycle.on_room_event(event)

    async def stop_recording(self, meeting_id: int) -> None:
        """The meeting ended: close its files; post-processing follows."""
        await self.lifecycle.stop_recording(meeting_id)

    async def retry(self, recording_ids: list[int]) -> None:
        """Process failed parts again, in the background (steps already done are kept)."""
        await self.postprocessing.retry(recording_ids)

    async def sweep_retention(self) -> int:
        """Delete the media of recordings past retention now; returns how many parts."""
        return await retention.sweep(self._ctx)

    def paused_reason(self, meeting_id: int) -> str | None:
        """``"disk_full"`` while the meeting's recording waits for space (in this process)."""
        return self._ctx.paused_reason(meeting_id)

    def check_disk(self) -> str:
        """Why recordings cannot be written now; empty if they can (or recording is off).

        Blocking (a small write): run it in an executor.
        """
        if not self._ctx.settings.record_meetings:
            return ""
        return self._ctx.disk.check()

    # -- a full disk -------------------------------------------------------------------

    async def _watch_space(self) -> None:
        """Once space is freed: resume paused meetings (as new parts) and deferred processing."""
        disk, lifecycle, deferred = self._ctx.disk, self.lifecycle, self.postprocessing.deferred
        while True:
            await asyncio.sleep(SPACE_CHECK_SECONDS)
            if not (lifecycle.paused or deferred or disk.full):
                continue
            try:
                free = disk.free()
                if free >= RESUME_FREE_BYTES and (disk.full or lifecycle.paused):
                    disk.note_space(free)
                    paused, lifecycle.paused = lifecycle.paused, set()
                    for meeting_id in paused:
                        await lifecycle.ensure_recording(meeting_id)
                for recording_id, needed in list(deferred.items()):
                    if free >= needed:
                        self.postprocessing.start(recording_id)
            except Exception:
                logger.exception("resuming after a full disk failed")
