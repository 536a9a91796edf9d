"""Each socket's allowance: event rates, chat, hands and ballots, and the join deadline.

Pure bookkeeping for server/realtime.py (no socket.io here): it closes a socket
through the ``disconnect`` callable it is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .errors import RateLimited
from .services.ratelimit import SlidingWindow, TokenBuckets, take_all
from .services.tokens import Principal

logger = logging.getLogger(__name__)

#: chat messages per participant per window
CHAT_BURST, CHAT_WINDOW = 5, 10.0
#: hand raises and lowers per participant per window
HAND_CHANGES, HAND_WINDOW = 10, 60.0
#: guests writing from one client address share this many chat lines per CHAT_WINDOW
#: (a guest token costs nothing: sixty of them must not make sixty allowances)
GUEST_CHAT_PER_ADDRESS = 3 * CHAT_BURST
#: a committee account may send this many times the participants' event rate and burst:
#: one clerk works the meeting from several screens (roll calls, closing votes)
COMMITTEE_EVENT_FACTOR = 10
#: the default of SOCKET_FLOOD_DISCONNECT: a socket refused this many events, with never
#: a calm spell as long as its bucket takes to fill (burst / rate: 4 s by default) between
#: two refusals, is not a person tapping: it is disconnected (x COMMITTEE_EVENT_FACTOR
#: for the committee)
FLOOD_DISCONNECT = 200


class SocketGuard:
    """The per-socket limits of this process, and the timers that close idle sockets."""

    def __init__(
        self,
        event_rate: float,
        event_burst: int,
        join_timeout: float,
        disconnect: Callable[[str], Awaitable[None]],
        flood_disconnect: int = FLOOD_DISCONNECT,
    ) -> None:
        self._disconnect = disconnect
        self.flood_disconnect = flood_disconnect
        self.chat_limits = SlidingWindow(CHAT_BURST, CHAT_WINDOW)
        self.guest_chat_limits = SlidingWindow(GUEST_CHAT_PER_ADDRESS, CHAT_WINDOW)
        #: ballots (and refused attempts) per participant: a voter needs a few, not hundreds
        self.cast_limits = SlidingWindow(30, 10.0)
        #: hand raises and lowers per participant (each one is stored)
        self.hand_limits = SlidingWindow(HAND_CHANGES, HAND_WINDOW)
        #: every client event, per participant (per socket for anonymous viewers)
        self.event_limits = TokenBuckets(event_rate, event_burst)
        #: sid -> [first refusal, last refusal, events refused since the first] (a socket
        #: refused without a calm spell is closed)
        self._refused: dict[str, list[float]] = {}
        self._join_timeout = join_timeout
        #: sid -> the timer that closes a connection that never joins a meeting
        self._join_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, sid: str, principal: Principal | None) -> None:
        """Take one event from the sender's bucket, or refuse it (``rate_limited``).

        A socket refused ``flood_disconnect`` events (SOCKET_FLOOD_DISCONNECT) with no
        calm spell between two refusals as long as its bucket takes to fill (burst / rate)
        is closed: no person taps like that, and each refusal still costs an ack. A fast
        flood is cut within a second; a slow one (a few events a second over the rate)
        within minutes, never refused for ever.
        """
        key = principal.id if principal is not None else f"sid:{sid}"
        scale = COMMITTEE_EVENT_FACTOR if principal is not None and principal.is_committee else 1
        wait = self.event_limits.take(key, scale)
        if not wait:
            return
        now = time.monotonic()
        refused = self._refused.get(sid)
        calm = self.event_limits.burst / self.event_limits.rate
        if refused is None or now - refused[1] > calm:
            refused = self._refused[sid] = [now, now, 0]
        refused[1] = now
        refused[2] += 1
        if refused[2] == self.flood_disconnect * scale:
            logger.info(
                "socket %s of %s closed: %d events refused in %.1f s",
                sid,
                key,
                refused[2],
                now - refused[0],
            )
            self.drop_later(sid)
        raise RateLimited(
            "too many events: at most {burst} at once and {rate:g} a second",
            params={
                "burst": self.event_limits.burst * scale,
                "rate": self.event_limits.rate * scale,
            },
            retry_after=wait,
        )

    def chat(self, principal: Principal | None, address: str | None) -> None:
        """A chat line's allowance: the sender's, and their address's if a guest."""
        if principal is None:
            return
        limits = [(self.chat_limits, principal.id)]
        if principal.role == "guest":  # guests of one address share one allowance
            limits.append((self.guest_chat_limits, f"addr:{address}"))
        take_all(*limits)

    def hand(self, principal: Principal | None) -> None:
        # each raise or lower is a stored event: a person's hand goes up a few times
        # a minute, not five times a second all meeting long (the committee is not limited)
        if principal is not None and not principal.is_committee:
            self.hand_limits.take(principal.id)

    def drop_later(self, sid: str) -> None:
        """Close a socket once the current event's ack has been sent."""
        self._spawn(self._drop(sid))

    async def _drop(self, sid: str) -> None:
        await asyncio.sleep(0.05)  # the refusal's ack goes out first
        await self._disconnect(sid)

    def expect_join(self, sid: str) -> None:
        """A connection that joins no meeting within SOCKET_JOIN_TIMEOUT is closed."""
        self._join_timers[sid] = asyncio.get_running_loop().call_later(
            self._join_timeout, lambda: self._spawn(self._join_too_late(sid))
        )

    async def _join_too_late(self, sid: str) -> None:
        if self._join_timers.pop(sid, None) is not None:
            logger.info("socket %s closed: no join within %s s", sid, self._join_timeout)
            await self._disconnect(sid)

    def joined(self, sid: str) -> None:
        timer = self._join_timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def socket_gone(self, sid: str) -> None:
        """Forget a closed socket's timer and counters."""
        self.joined(sid)
        self._refused.pop(sid, None)
        self.event_limits.forget(f"sid:{sid}")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for timer in self._join_timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
