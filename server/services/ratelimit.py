"""Counting failed guesses (PINs, passwords) per key, in this process."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import RateLimited, Unauthorized


class FailureLimiter:
    """At most ``limit`` failures per key in ``window`` seconds; then refuse until they age out."""

    def __init__(self, limit: int = 5, window: float = 600.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self.limit:
                wait = int(failures[0] + self.window - now) + 1
                raise RateLimited(
                    f"too many wrong attempts: try again in {max(1, wait // 60)} minute(s)"
                )

    @contextmanager
    def guard(self, *keys: str) -> Iterator[None]:
        """Refuse while ``keys`` are locked out; count an Unauthorized raised inside as a failure."""
        self.check(*keys)
        try:
            yield
        except Unauthorized:
            self.failed(*keys)
            raise

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self.max_keys:
            self._failures.clear()  # a flood of keys: forget rather than grow without bound
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
