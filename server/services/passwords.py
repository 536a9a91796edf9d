"""Password hashing (argon2) in a bounded pool of threads, never on the event loop.

One argon2 check takes ~0.1–0.3 s of a core. On the event loop, 100 parallel logins
froze every meeting for ~10 s (issue 12). Here the checks run in ``workers`` threads
(argon2-cffi releases the GIL while it hashes); at most ``queue`` more may wait for a
thread, and any beyond that are refused at once with :class:`~server.errors.Busy`
(503 ``busy`` with ``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import Busy

T = TypeVar("T")

#: added niceness of the hashing threads (Linux sets it per thread)
HASH_NICENESS = 10

#: the hasher's parameters (argon2-cffi's defaults: RFC 9106's low-memory choice)
HASHER = PasswordHasher()
#: Verified against when the username is unknown, so a login takes as long whether or
#: not the account exists. Computed once, when the module is imported (not on the loop).
DUMMY_HASH = HASHER.hash("not a real password")


def _yield_to_the_loop() -> None:
    """Run this hashing thread (and the lane threads argon2 starts from it) at a lower
    priority: on a busy 2-core box the event loop, which serves every meeting, goes first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the threads still help
        pass


class PasswordPool:
    """Hash and verify passwords in ``workers`` threads, with at most ``queue`` waiting."""

    def __init__(self, workers: int = 2, queue: int = 16, hasher: PasswordHasher = HASHER) -> None:
        self.workers = max(1, int(workers))
        self.capacity = self.workers + max(0, int(queue))
        self._hasher = hasher
        self._executor = ThreadPoolExecutor(
            self.workers, thread_name_prefix="argon2", initializer=_yield_to_the_loop
        )
        # decremented in the worker thread (or wherever a future is cancelled)
        self._lock = threading.Lock()
        self._in_use = 0
        #: seconds one hash takes here, smoothed: tells a refused client when to retry
        self._seconds = 0.2

    @property
    def in_use(self) -> int:
        """Checks running or waiting for a thread now."""
        return self._in_use

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; a malformed stored hash never matches."""
        return await self._run(self._verify, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Cheap (parses the hash's parameters): safe on the loop."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _run(self, work: Callable[..., T], *args) -> T:
        # check and take a place with no await in between: the 19th of 18 places is refused
        with self._lock:
            if self._in_use >= self.capacity:
                raise Busy(
                    "the server is busy checking other passwords: try again in a few seconds",
                    retry_after=self._retry_after(),
                )
            self._in_use += 1
        try:
            future = self._executor.submit(self._timed, work, *args)
        except BaseException:
            self._leave(None)
            raise
        # The place is given back when the thread is done (or the job is cancelled before it
        # started), not when the caller stops waiting: a client that hangs up must not let
        # more hashing pile up behind the threads than the queue allows.
        future.add_done_callback(self._leave)
        return await asyncio.wrap_future(future)

    def _timed(self, work: Callable[..., T], *args) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)

    def _leave(self, _future: Future | None) -> None:
        with self._lock:
            self._in_use -= 1

    def _retry_after(self) -> float:
        """Seconds until the threads have worked through the checks now waiting."""
        return min(30.0, max(1.0, self.capacity / self.workers * self._seconds))
