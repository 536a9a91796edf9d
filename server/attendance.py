"""Remote attendance: each participant's devices in a meeting's room, and a leave's grace.

A participant's first device in a meeting's room is recorded as ``attendance:joined``.
When their last device goes (closed, or silent past the ping timeout), the leave waits
``grace`` seconds (ATTENDANCE_LEAVE_GRACE): a device of theirs that joins again within
it records nothing, so a phone whose network dropped for a moment is neither counted
as leaving and joining again nor taken out of a vote's "present". Once the grace has
run out with no device back, ``attendance:left`` is recorded, its ``left_at`` the
moment the last device went. A grace of 0 records a leave at once.

Leaves still in their grace are recorded at once when the meeting ends (before its
status changes: an ended meeting records no attendance) and when the server stops.

Per process, as the sockets are: with several processes (REDIS_URL) each counts the
devices on its own sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import CunhuiError
from .services.tokens import Principal
from .store.outage import database_refusal

logger = logging.getLogger(__name__)

#: record(meeting id, participant, joined?, left_at): store and announce one change
Record = Callable[[int, Principal, bool, str | None], Awaitable[None]]
#: on shutdown, recording the leaves still in their grace takes at most this long (s):
#: the whole stop has 9.5 s (server/cli.py), recordings and peers come first
CLOSE_WAIT = 2.5
#: a leave whose write failed (the database down) is tried again this much later (s)
RETRY_LEAVE = 5.0


@dataclass
class _Leaving:
    """A participant whose last device went; the leave is recorded when ``timer`` fires."""

    principal: Principal
    left_at: str  # ISO 8601, UTC: when the last device went
    timer: asyncio.TimerHandle


class Attendance:
    """Who is in each meeting's room on this process's sockets; leaves in their grace."""

    def __init__(self, record: Record, grace: float) -> None:
        self._record = record
        self.grace = grace
        #: meeting id -> participant id -> this process's connected sids
        self.devices: dict[int, dict[str, set[str]]] = {}
        #: (meeting id, participant id) -> a leave waiting for its grace to run out
        self._leaving: dict[tuple[int, str], _Leaving] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def leaving(self, meeting_id: int) -> list[str]:
        """The participants of a meeting whose leave waits for its grace (ids)."""
        return [pid for (mid, pid) in self._leaving if mid == meeting_id]

    async def joined(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A device joined the room: the participant's first is a join, unless they were
        only away for less than the grace (then nothing is recorded)."""
        if principal is None:
            return
        devices = self.devices.setdefault(meeting_id, {}).setdefault(principal.id, set())
        first = not devices
        devices.add(sid)
        back = self._leaving.pop((meeting_id, principal.id), None)
        if back is not None:
            back.timer.cancel()  # back within the grace: they never left
            return
        if first:
            try:
                await self._record(meeting_id, principal, True, None)
            except BaseException:
                # not recorded (the database down): the join sent again must be a first
                self._forget(meeting_id, principal.id, sid)
                raise

    def _forget(self, meeting_id: int, participant: str, sid: str) -> None:
        here = self.devices.get(meeting_id, {})
        devices = here.get(participant, set())
        devices.discard(sid)
        if not devices:
            here.pop(participant, None)
            if not here:
                self.devices.pop(meeting_id, None)

    async def left(
        self, sid: str, meeting_id: int, principal: Principal | None, silent: float = 0
    ) -> None:
        """A device left the room; the participant's last one starts the leave's grace.

        ``silent``: seconds it had been silent already (a ping timeout): it went then.
        """
        if principal is None:
            return
        here = self.devices.get(meeting_id, {})
        devices = here.get(principal.id)
        if not devices or sid not in devices:
            return
        devices.discard(sid)
        if devices:
            return
        del here[principal.id]
        if not here:  # nobody of this meeting left in this process
            del self.devices[meeting_id]
        went = datetime.now(UTC) - timedelta(seconds=silent)
        left_at = went.isoformat(timespec="milliseconds")
        if self.grace <= 0:
            await self._leave(meeting_id, principal, left_at)
            return
        key = (meeting_id, principal.id)
        timer = asyncio.get_running_loop().call_later(self.grace, self._due, key)
        self._leaving[key] = _Leaving(principal, left_at, timer)

    def _due(self, key: tuple[int, str]) -> None:
        leaving = self._leaving.pop(key, None)
        if leaving is None:
            return
        task = asyncio.get_running_loop().create_task(self._leave_or_retry(key, leaving))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _leave_or_retry(self, key: tuple[int, str], leaving: _Leaving) -> None:
        if not await self._leave(key[0], leaving.principal, leaving.left_at):
            self._retry_later(key, leaving)

    async def _leave(self, meeting_id: int, principal: Principal, left_at: str) -> bool:
        """Record one leave; False when it could not be (it may be tried again)."""
        try:
            await self._record(meeting_id, principal, False, left_at)
            return True
        except CunhuiError as exc:  # e.g. the meeting ended meanwhile
            logger.info("leave of %s in meeting %s not recorded: %s", principal.id, meeting_id, exc)
            return exc.status != 503
        except Exception as exc:
            if database_refusal(exc) is not None:  # the database down: tried again later
                return False
            logger.exception("leave of %s in meeting %s not recorded", principal.id, meeting_id)
            return True

    async def leave_now(self, meeting_id: int | None = None, within: float = 5.0) -> None:
        """Record the leaves still in their grace now: of one meeting (it ends), or all.

        Those not reached ``within`` seconds (the database slow) keep their grace timers;
        one that could not be written is tried again later.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        due = [key for key in self._leaving if meeting_id is None or key[0] == meeting_id]
        for key in due:
            if loop.time() > deadline:
                break
            leaving = self._leaving.pop(key, None)
            if leaving is None:  # came back while an earlier leave was being recorded
                continue
            leaving.timer.cancel()
            if not await self._leave(key[0], leaving.principal, leaving.left_at):
                self._retry_later(key, leaving)

    def _retry_later(self, key: tuple[int, str], leaving: _Leaving) -> None:
        if key[1] in self.devices.get(key[0], {}) or key in self._leaving:
            return  # back meanwhile: no leave
        leaving.timer = asyncio.get_running_loop().call_later(RETRY_LEAVE, self._due, key)
        self._leaving[key] = leaving

    async def close(self) -> None:
        """The server stops: record the leaves in their grace, and those being recorded."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.leave_now(within=CLOSE_WAIT / 2), CLOSE_WAIT)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_WAIT)
        for leaving in self._leaving.values():
            leaving.timer.cancel()
        self._leaving.clear()
