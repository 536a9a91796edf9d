"""Reports read a meeting's whole record (minutes, audit) or a page of it (timeline).

A long record (40,000 events after a flood of hands) costs seconds of work; any
watcher, guests included, may ask for it. So such requests go through one
:class:`ReportGate`: at most ``REPORT_SLOTS`` run at once, up to ``REPORT_QUEUE``
more wait, and beyond that the answer is ``503 busy`` with ``Retry-After``. The
work itself reads the record in bounded chunks and does its CPU part (hashing,
decoding, rendering) in threads, so the event loop keeps serving everyone else.
Concurrent audits of one meeting share one computation (:meth:`ReportGate.verdict`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from .. import keys
from ..errors import Busy
from ..services import audit, timeline
from ..store import Meeting, pk

#: report requests working at once (the machine may have 2 cores)
REPORT_SLOTS = 2
#: report requests waiting for a slot; more are answered 503 busy
REPORT_QUEUE = 16
#: seconds a refused client is told to wait
RETRY_AFTER = 2


class ReportGate:
    """At most ``slots`` reports at once, ``queue`` waiting, the rest refused (Busy)."""

    def __init__(self, slots: int = REPORT_SLOTS, queue: int = REPORT_QUEUE) -> None:
        self.capacity = slots + queue
        self._slots = asyncio.Semaphore(slots)
        #: requests holding or waiting for a slot
        self.load = 0
        #: meeting id -> the audit being computed now, shared by whoever asks meanwhile
        self._audits: dict[tuple[int, int, str], asyncio.Task] = {}

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.load >= self.capacity:
            raise Busy(
                "the server is busy with other reports: try again in a moment",
                retry_after=RETRY_AFTER,
            )
        self.load += 1
        try:
            async with self._slots:
                yield
        finally:
            self.load -= 1

    async def verdict(self, database, meeting: Meeting) -> audit.Verdict:
        """The meeting's audit chain recomputed now; asked again meanwhile, the same run.

        The run takes a slot of its own; those who join it wait without one.
        """
        key = (pk(meeting), meeting.last_seq, meeting.last_hash)
        task = self._audits.get(key)
        if task is None:
            if self.load >= self.capacity:
                raise Busy(
                    "the server is busy with other reports: try again in a moment",
                    retry_after=RETRY_AFTER,
                )
            task = asyncio.get_running_loop().create_task(self._verify(database, pk(meeting)))
            self._audits[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # shield: one asker leaving does not cancel the others' answer
        return await asyncio.shield(task)

    def _forget(self, key, task: asyncio.Task) -> None:
        self._audits.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when all askers left

    async def _verify(self, database, meeting_id: int) -> audit.Verdict:
        async with self.slot():
            async with database.session() as db:
                meeting = await db.get(Meeting, meeting_id)
                return await timeline.verify_chain(db, meeting)


REPORTS: web.AppKey[ReportGate] = web.AppKey("reports", ReportGate)


def gate(request: web.Request) -> ReportGate:
    return request.app[REPORTS]


async def verdict(request: web.Request, meeting: Meeting) -> audit.Verdict:
    return await gate(request).verdict(request.app[keys.DATABASE], meeting)
