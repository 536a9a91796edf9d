"""One meeting's room changes, one at a time, the committee's first (used by server/live.py)."""

from __future__ import annotations

import asyncio
from collections import deque

from .errors import RateLimited


class RoomLock:
    """One meeting's room changes, one at a time; the committee's turn comes first.

    Participants' changes wait behind every waiting committee change, so however
    many a crowd (or one hostile phone) has queued, the chair's next action is the
    next change made. ``waiting`` counts the participants' changes in line (they
    are shed beyond a limit); ``users`` its holder and waiters (at 0 it is dropped).
    """

    def __init__(self) -> None:
        self._held = False
        self._first: deque[asyncio.Future[None]] = deque()
        self._rest: deque[asyncio.Future[None]] = deque()
        self.users = 0

    @property
    def waiting(self) -> int:
        return len(self._rest)

    def locked(self) -> bool:
        return self._held

    async def acquire(self, first: bool = False) -> None:
        if not self._held and not self._first and not self._rest:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._first if first else self._rest
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the lock while being cancelled: pass it on
            else:
                try:
                    line.remove(turn)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        """Hand the lock to the next in line (the committee's first), or free it."""
        for line in (self._first, self._rest):
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


class RoomTurn:
    """``async with``: one turn at a meeting's RoomLock, made when entered, dropped when idle.

    ``shed_at``: refuse (``rate_limited``) instead of queueing while that many
    participants' changes already wait. No lock is kept for a meeting nobody is
    changing, so requests naming ever-new meeting ids leave nothing behind.
    """

    def __init__(
        self, locks: dict[int, RoomLock], meeting_id: int, first: bool, shed_at: int | None
    ) -> None:
        self._locks, self.meeting_id, self.first, self.shed_at = locks, meeting_id, first, shed_at
        self._lock: RoomLock | None = None

    async def __aenter__(self) -> None:
        lock = self._locks.get(self.meeting_id)
        if lock is None:
            lock = self._locks[self.meeting_id] = RoomLock()
        if self.shed_at is not None and lock.waiting >= self.shed_at:
            self._drop_if_idle(lock)
            raise RateLimited("the room is busy: send it again in a moment", retry_after=1)
        lock.users += 1
        try:
            await lock.acquire(self.first)
        except BaseException:
            lock.users -= 1
            self._drop_if_idle(lock)
            raise
        self._lock = lock

    async def __aexit__(self, *exc: object) -> None:
        lock, self._lock = self._lock, None
        assert lock is not None, "a turn is left only after it was entered"
        lock.release()
        lock.users -= 1
        self._drop_if_idle(lock)

    def _drop_if_idle(self, lock: RoomLock) -> None:
        if lock.users == 0 and self._locks.get(self.meeting_id) is lock:
            del self._locks[self.meeting_id]
