"""Slow and greedy HTTP clients: deadlines on reading requests, a cap per address.

aiohttp reads a request's head and body for as long as the client cares to
take (it has a keep-alive timer, but no header or body timeout), so a client
that trickles one byte a second ("slowloris", or a slow POST body) holds a
connection and a descriptor for ever. ``cunhui serve`` runs the app through
:class:`GuardedAppRunner`, whose connections

- must send a complete request head within ``header_timeout`` of connecting or,
  on a kept-alive connection, of its first byte, however slowly they trickle;
- must send a request's body within ``header_timeout`` plus one second per
  :data:`MIN_BODY_RATE` bytes received (else the handler's read raises a 408
  ``request_timeout`` and the connection closes after the answer);
- are closed after :data:`KEEPALIVE_SECONDS` idle between requests;
- number at most :data:`MAX_PER_ADDRESS` per client address (loopback and
  TRUSTED_PROXIES excepted: every client comes through them); more are
  answered 503 and closed.

Nothing runs while a request is being handled: a WebSocket (socket.io), a
long-poll or a streamed response is never cut by these deadlines.

Everything here touches aiohttp's ``RequestHandler`` internals (``_waiter``,
``_request_count``, ``_messages``, ``_upgraded``); tests/test_attack_slow_http.py
fails loudly if an aiohttp upgrade changes them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import Counter
from typing import cast

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from ..errors import RequestTimeout

logger = logging.getLogger(__name__)

#: seconds a kept-alive connection may stay idle between requests
KEEPALIVE_SECONDS = 30.0
#: a request body must arrive at least this fast (bytes/s) after the first
#: ``header_timeout`` seconds (as Apache's mod_reqtimeout's MinRate)
MIN_BODY_RATE = 500
#: simultaneous connections per client address: generous, as a whole village may
#: share one address (carrier-grade NAT), yet far below the descriptor limit
MAX_PER_ADDRESS = 1000
#: slow clients closed are summed up in the log at most this often
LOG_EVERY = 60.0


class ConnectionGuard:
    """The limits, the connections counted per address, and what was closed."""

    def __init__(
        self,
        header_timeout: float,
        *,
        per_address: int = MAX_PER_ADDRESS,
        exempt: tuple[str, ...] = (),
        exempt_loopback: bool = True,
    ) -> None:
        self.header_timeout = header_timeout
        self.per_address = per_address
        self._exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self._exempt_loopback = exempt_loopback
        self.open: Counter[str] = Counter()
        #: connections closed for being slow, and refused for being too many
        self.closed_slow = 0
        self.refused = 0
        self._logged_slow = 0
        self._summary: asyncio.TimerHandle | None = None

    def counts(self, address: str | None) -> bool:
        """Whether ``address`` is held to the per-address cap."""
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if self._exempt_loopback and ip.is_loopback:
            return False
        return not any(ip in network for network in self._exempt)

    def admit(self, address: str) -> bool:
        if self.open[address] >= self.per_address:
            self.refused += 1
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def closed_for_slowness(self, loop: asyncio.AbstractEventLoop, address) -> None:
        """Count it; the log says so at once, then sums up once a minute while it goes on."""
        self.closed_slow += 1
        if self._summary is None:
            logger.warning(
                "closing HTTP connections that send no complete request in time "
                "(HTTP_HEADER_TIMEOUT=%g s), the first from %s",
                self.header_timeout,
                address,
            )
            self._logged_slow = self.closed_slow
            self._summary = loop.call_later(LOG_EVERY, self._sum_up, loop)

    def _sum_up(self, loop: asyncio.AbstractEventLoop) -> None:
        self._summary = None
        closed = self.closed_slow - self._logged_slow
        if closed:
            logger.warning(
                "closed %s more slow HTTP connection(s) in the last %g s", closed, LOG_EVERY
            )
            self._logged_slow = self.closed_slow
            self._summary = loop.call_later(LOG_EVERY, self._sum_up, loop)


_BUSY = json.dumps(
    {"error": {"code": "busy", "message": "too many connections from your address"}}
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 10\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n" % len(_BUSY)
) + _BUSY


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with deadlines on the request head and body."""

    def __init__(self, manager, *, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._deadline: asyncio.TimerHandle | None = None
        #: the payload being received, while it has a deadline
        self._body: StreamReader | None = None
        self._body_started = 0.0
        self._body_bytes = 0
        self._address: str | None = None  # counted against the per-address cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else None
        if address is not None and self._guard.counts(address):
            if not self._guard.admit(address):
                cast(asyncio.WriteTransport, transport).write(BUSY_RESPONSE)  # a TCP stream
                self.force_close()
                return
            self._address = address
        self._arm(self._guard.header_timeout)  # the first request's head

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._body = None
        if self._address is not None:
            self._guard.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        requests = self._request_count
        super().data_received(data)
        if self._request_count != requests:  # a head is complete: its deadline is met
            self._disarm()
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof() and not self._upgraded:
                self._body, self._body_bytes = payload, 0
                self._body_started = self._loop.time()
                self._arm(self._guard.header_timeout)
        elif self._body is not None:
            self._body_bytes += len(data)
            if self._body.is_eof():
                self._body = None
                self._disarm()
        elif data and self._deadline is None and self._waiter is not None and not self._upgraded:
            # the first bytes of the next request on an idle kept-alive connection
            self._arm(self._guard.header_timeout)

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._body is not None:
            if self._body.is_eof():
                self._body = None
                return
            allowed = (
                self._body_started + self._guard.header_timeout + self._body_bytes / MIN_BODY_RATE
            )
            if allowed > self._loop.time():  # it is still coming fast enough
                self._arm(allowed - self._loop.time())
                return
        if self.transport is None:
            return
        self._guard.closed_for_slowness(self._loop, self.transport.get_extra_info("peername"))
        if self._body is None:
            self.force_close()  # no request yet: nobody to answer
            return
        # the handler waits on the body: it gets a 408 to answer with, and the
        # connection closes after that answer without waiting for the rest
        body, self._body = self._body, None
        self._lingering_time = 0.0
        self.close()
        body.set_exception(
            RequestTimeout(
                "the request body did not arrive in time (at least {min_body_rate} bytes/s)",
                params={"min_body_rate": MIN_BODY_RATE},
            )
        )


class GuardedServer(web.Server):
    """aiohttp's low-level server, making :class:`GuardedRequestHandler` connections."""

    def __init__(self, plain: web.Server, guard: ConnectionGuard) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are guarded (use it as you would AppRunner)."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_SECONDS)
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self.guard)
