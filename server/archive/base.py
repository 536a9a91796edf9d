"""What the archive's jobs share: the database and media hub, the directory, background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from media import MediaHub

from ..services import replays
from ..settings import Settings
from ..store import Database, Recording
from .disk import Disk

logger = logging.getLogger(__name__)

#: a recording object's ``paused`` while a full disk holds it up (the host page says so)
PAUSED_DISK_FULL = "disk_full"

#: sends a transient event (not stored, no seq) to a meeting's clients: (event, payload, meeting)
Emit = Callable[[str, dict[str, Any], int], Awaitable[None]]


class Context:
    """The settings, the database and media hub (from :meth:`attach`), the recordings disk."""

    def __init__(self, settings: Settings, emit: Emit) -> None:
        self.settings = settings
        self._emit = emit
        self._database: Database | None = None
        self._media: MediaHub | None = None
        self.disk = Disk(Path(settings.recordings_dir))
        #: meetings whose recording stopped (or could not start) on a full disk: their
        #: clients are told ``paused: "disk_full"``; resumed as a new part once space is freed
        self.paused: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, database: Database, media: MediaHub) -> None:
        """At startup: the database and the media hub are opened after the archive is made."""
        self._database, self._media = database, media

    @property
    def db(self) -> Database:
        assert self._database is not None, "the archive is not started"
        return self._database

    @property
    def media(self) -> MediaHub:
        assert self._media is not None, "the archive is not started"
        return self._media

    @property
    def root(self) -> Path:
        return self.disk.root

    def directory(self, recording: Recording) -> Path:
        return self.root / recording.directory

    def public(self, message: str) -> str:
        """An error for clients: no server paths (those stay in the log)."""
        return message.replace(str(self.root.resolve()), "recordings").replace(
            str(self.root), "recordings"
        )[:500]

    def paused_reason(self, meeting_id: int) -> str | None:
        """``"disk_full"`` while the meeting's recording waits for space, else ``None``."""
        return PAUSED_DISK_FULL if meeting_id in self.paused else None

    async def broadcast(self, meeting_id: int) -> None:
        """Tell the meeting's clients how its recording stands (host page, replay page)."""
        async with self.db.session() as db:
            found = await replays.parts(db, meeting_id)
        paused = self.paused_reason(meeting_id)
        if found:
            payload = replays.describe(meeting_id, found, self.root)
        elif paused:  # a full disk before the first part: the host is told all the same
            payload = {"meeting_id": meeting_id, "status": "not_started", "parts": []}
        else:
            return
        payload["paused"] = paused
        await self._emit("recording:status", payload, meeting_id)

    # -- background tasks --------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("recording task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Shutdown: unfinished work resumes at the next startup."""
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
