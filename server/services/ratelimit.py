"""Rate limits, in this process: wrong guesses per key, and per-participant event rates.

Guesses (wrong passwords and PINs, guest sign-ins) are counted by :class:`GuessLimiter`;
a participant's live events by :class:`SlidingWindow` (chat lines, hands, ballots) and
:class:`TokenBuckets` (every socket event).

An attempt is *reserved* before the slow check it guards (a password hash, a database
lookup): the limits are checked and the attempt counted with no ``await`` in between, so
a guess still in flight already counts and the 11th of 11 parallel guesses is refused
while the first 10 are being checked. A reservation that turns out not to be a wrong
guess (the right password, a busy server, a bad request) is released again.

Each attempt is counted under several keys of different kinds (the caller's address,
the address and account together, the account), each kind with its own :class:`Limit`,
so that the limits slow the guesser and not the people the guesser aims at.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from ..errors import Phrase, RateLimited, Unauthorized


@dataclass(frozen=True)
class Limit:
    """At most ``count`` attempts in any ``window`` seconds."""

    count: int
    window: float


def address_key(remote: str | None) -> str:
    """The client's address as a lockout key: an IPv6 client is its /64 (one home or phone).

    A single IPv6 subscriber holds a whole /64, so keying on the full address would hand a
    guesser 2^64 fresh lockout counters.
    """
    try:
        address = ip_address(remote or "")
    except ValueError:
        return remote or "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def wait_text(seconds: float) -> str:
    """'40 seconds', '3 minutes': how long until trying again can succeed."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def locked_out(refusal: str, wait: float) -> RateLimited:
    """The refusal of a locked-out caller: ``refusal`` (a message id) and when to try again."""
    seconds = max(1, math.ceil(wait))
    minutes = math.ceil(seconds / 60)
    params = {"refusal": Phrase(refusal), "seconds": seconds, "minutes": minutes}
    if seconds >= 60 and minutes == 1:
        return RateLimited("{refusal}: try again in 1 minute", params=params, retry_after=wait)
    if seconds >= 60:
        return RateLimited(
            "{refusal}: try again in {minutes} minutes", params=params, retry_after=wait
        )
    if seconds == 1:
        return RateLimited("{refusal}: try again in 1 second", params=params, retry_after=wait)
    return RateLimited("{refusal}: try again in {seconds} seconds", params=params, retry_after=wait)


class Attempt:
    """One reserved attempt, counted under each of its keys until it is released."""

    def __init__(
        self,
        limiter: GuessLimiter,
        counted: list[tuple[str, str, deque[float]]],
        at: float,
        exempt: frozenset[str],
    ) -> None:
        self._limiter = limiter
        self._counted = counted
        self._at = at
        self._exempt = exempt
        self._released = False

    def release(self) -> None:
        """Forget this attempt: it was not a wrong guess (or the use did not happen)."""
        if self._released:
            return
        self._released = True
        for _kind, _key, entries in self._counted:
            try:
                entries.remove(self._at)
            except ValueError:
                pass  # already aged out

    def tries_left(self) -> int | None:
        """Attempts still allowed now under the tightest limit that applies to this caller."""
        return self._limiter.tries_left(
            {kind: key for kind, key, _ in self._counted if kind not in self._exempt}
        )


class GuessLimiter:
    """Attempts counted per key, each kind of key with its own :class:`Limit`.

    ``limits`` maps a kind (``"address"``, ``"account"``…) to its limit; every call names
    one key per kind it counts under. Memory is bounded by ``max_keys`` (the keys used
    least recently are forgotten first, so a flood of new keys cannot wipe a guesser's
    own counter, which every guess of theirs touches again).
    """

    def __init__(
        self,
        limits: Mapping[str, Limit],
        refusal: str = "too many wrong attempts",
        max_keys: int = 100_000,
    ) -> None:
        self.limits = dict(limits)
        self.refusal = refusal
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def reserve(self, keys: Mapping[str, str], *, exempt: Iterable[str] = ()) -> Attempt:
        """Count an attempt under ``keys`` (kind → key), or raise RateLimited.

        Kinds in ``exempt`` are counted but not checked (the owner's known device passes
        the per-account backoff). Synchronous on purpose: nothing can slip in between
        the check and the count.
        """
        exempt = frozenset(exempt)
        now = time.monotonic()
        self._forget_old(now)
        waits = [
            wait
            for kind, key in keys.items()
            if kind not in exempt and (wait := self._locked_for(kind, key, now)) is not None
        ]
        if waits:
            wait = max(waits)
            raise locked_out(self.refusal, wait)
        counted = []
        for kind, key in keys.items():
            entries = self._entries_of(kind, key)
            entries.append(now)
            counted.append((kind, key, entries))
        return Attempt(self, counted, now, exempt)

    @contextmanager
    def counting_failures(
        self, keys: Mapping[str, str], *, exempt: Iterable[str] = (), tell_tries_left: bool = True
    ) -> Iterator[Attempt]:
        """Reserve an attempt; it stays counted only if the block raises Unauthorized.

        The Unauthorized gets ``tries_left`` in its error object (unless this is an
        outer ceiling nested inside the caller's own limits: ``tell_tries_left=False``).
        """
        attempt = self.reserve(keys, exempt=exempt)
        try:
            yield attempt
        except Unauthorized as exc:
            left = attempt.tries_left() if tell_tries_left else None
            if left is not None:
                exc.details.setdefault("tries_left", left)
            raise
        except BaseException:
            attempt.release()
            raise
        attempt.release()

    @contextmanager
    def counting(self, keys: Mapping[str, str]) -> Iterator[Attempt]:
        """Reserve a use (e.g. a guest sign-in); it is given back if the block fails."""
        attempt = self.reserve(keys)
        try:
            yield attempt
        except BaseException:
            attempt.release()
            raise

    def tries_left(self, keys: Mapping[str, str]) -> int | None:
        now = time.monotonic()
        left = [
            self.limits[kind].count - len(self._recent(kind, key, now) or ())
            for kind, key in keys.items()
        ]
        return max(0, min(left)) if left else None

    def _locked_for(self, kind: str, key: str, now: float) -> float | None:
        """Seconds until ``key`` is below its limit again, or None if it is below now."""
        limit = self.limits[kind]
        entries = self._recent(kind, key, now)
        if entries is None or len(entries) < limit.count:
            return None
        return max(1.0, entries[-limit.count] + limit.window - now)

    def _recent(self, kind: str, key: str, now: float) -> deque[float] | None:
        entries = self._entries.get((kind, key))
        if entries is None:
            return None
        horizon = now - self.limits[kind].window
        while entries and entries[0] <= horizon:
            entries.popleft()
        return entries

    def _entries_of(self, kind: str, key: str) -> deque[float]:
        entries = self._entries.get((kind, key))
        if entries is None:
            if len(self._entries) >= self.max_keys:
                self._entries.popitem(last=False)
            # never more than a few times the limit: exempt counting cannot grow without end
            entries = self._entries[(kind, key)] = deque(maxlen=4 * self.limits[kind].count)
        else:
            self._entries.move_to_end((kind, key))
        return entries

    def _forget_old(self, now: float) -> None:
        """Drop a couple of the least recently used keys whose attempts have all aged out."""
        for _ in range(2):
            if not self._entries:
                return
            (kind, key), entries = next(iter(self._entries.items()))
            if entries and entries[-1] > now - self.limits[kind].window:
                return
            del self._entries[(kind, key)]


class SlidingWindow:
    """At most ``burst`` accepted actions per ``window`` seconds, per key (this process)."""

    def __init__(self, burst: int, window: float, max_keys: int = 20_000) -> None:
        self.burst, self.window, self.max_keys = burst, window, max_keys
        self._times: dict[str, deque[float]] = {}

    def check(self, key: str) -> None:
        """Raise RateLimited if ``key`` has no action left now; record nothing."""
        now = time.monotonic()
        times = self._times.get(key)
        if times is None:
            return
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.burst:
            wait = self.window - (now - times[0])
            raise RateLimited(
                "at most {burst} messages in {window:.0f} s: wait {wait:.0f} s",
                params={"burst": self.burst, "window": self.window, "wait": wait},
                retry_after=wait,
            )

    def record(self, key: str) -> None:
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= self.max_keys:
                self._prune()
            times = self._times[key] = deque()
        times.append(time.monotonic())

    def take(self, key: str) -> None:
        self.check(key)
        self.record(key)

    def _prune(self) -> None:
        """Forget keys with nothing in the window (guest ids and sids come and go)."""
        now = time.monotonic()
        for key in [k for k, t in self._times.items() if not t or now - t[-1] > self.window]:
            del self._times[key]


def take_all(*limits: tuple[SlidingWindow, str]) -> None:
    """Take one action from each (window, key), or from none if any refuses."""
    for window, key in limits:
        window.check(key)
    for window, key in limits:
        window.record(key)


class TokenBuckets:
    """Per key: up to ``burst`` events at once, refilled at ``rate`` per second (this process).

    ``scale`` multiplies both for one key (the committee's larger allowance). A bucket
    left alone for ``burst / rate`` seconds is full again, so it is forgotten.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        #: key -> [tokens, time of the last take]
        self._buckets: dict[str, list[float]] = {}

    def take(self, key: str, scale: float = 1.0) -> float:
        """Take a token; return 0, or the seconds until one is there (nothing taken)."""
        now = time.monotonic()
        rate, burst = self.rate * scale, self.burst * scale
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return (1 - tokens) / rate
        bucket[0] = tokens - 1
        return 0.0

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate  # the same for every scale
        for key in [k for k, b in self._buckets.items() if now - b[1] >= full_after]:
            del self._buckets[key]
