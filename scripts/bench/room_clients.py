"""The room benchmark's worker: many socket.io clients in one asyncio process.

Run as ``python scripts/bench_room.py --worker clients``; the coordinator
(``room_runner``) speaks to it in JSON lines (``common.run_worker``):

- ``setup``: one ``socketio.AsyncClient`` per client (websocket only, no
  reconnection), sharing one aiohttp session per process;
- ``join``: client ``i`` connects at ``t0 + i / rate`` (CLOCK_MONOTONIC is
  system-wide, so the ramp is global across workers) and sends ``join``;
  returns each client's connect + join-ack time;
- ``chat``: the senders held here send their share of a global schedule,
  message ``k`` at ``start + k / rate`` by sender ``k % senders``, text
  ``"<sender>:<n>:<time.time() just before the emit>"``; returns the acks;
- ``progress``: chat lines received so far;
- ``report``: given the keys the server acknowledged, every client's missing,
  duplicate and unexpected lines, and the delivery latencies as a histogram;
- ``leave``: disconnect everyone.

Delivery latency is the ``chat:message`` handler's ``time.time()`` minus the
sender's; both are CLOCK_REALTIME on one machine, so they compare across
processes. The handler runs after this process has read and decoded the frame:
a busy worker adds its own delay, which ``loop_lag_ms`` shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

from .common import run_worker
from .room_stats import Histogram, percentiles

LAG_TICK = 0.05  # seconds between event-loop lag probes


class Client:
    __slots__ = (
        "index",
        "role",
        "token",
        "sender",
        "sio",
        "connected",
        "joined",
        "error",
        "connect_ms",
        "join_ms",
        "late_ms",
        "got",
        "duplicates",
        "out_of_order",
        "last_seq",
        "presence",
        "attendance",
        "dropped",
        "sent",
    )

    def __init__(self, index: int, role: str, token: str | None, sender: int | None) -> None:
        self.index = index
        self.role = role
        self.token = token
        self.sender = sender  # the global sender number, None for a listener
        self.sio = None
        self.connected = False
        self.joined = False
        self.error: str | None = None
        self.connect_ms: float | None = None
        self.join_ms: float | None = None
        self.late_ms = 0.0
        self.got: set[str] = set()
        self.duplicates = 0
        self.out_of_order = 0
        self.last_seq = 0
        self.presence = 0
        self.attendance = 0
        self.dropped: str | None = None
        self.sent = 0


class Worker:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.http = None
        self.base = ""
        self.meeting_id = 0
        self.hist = Histogram()
        #: per chat line, the earliest and the latest delivery here (ms)
        self.spans: dict[str, list[float]] = {}
        self.leaving = False
        self.lags: list[float] = []
        self.lag_task: asyncio.Task | None = None
        self.deadline = time.monotonic() + float(os.environ.get("BENCH_ROOM_TIMEOUT", "600"))

    # ------------------------------------------------------------- lifecycle

    async def setup_process(self) -> None:
        import aiohttp

        # one session for every client here; websockets hold their connection, so no pool limit
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
        )
        self.lag_task = asyncio.ensure_future(self._probe_lag())

    async def _probe_lag(self) -> None:
        """How late this loop wakes: the generator's own contribution to latency."""
        loop = asyncio.get_running_loop()
        while loop.time() < self.deadline:  # bounded by the run's timeout
            t = loop.time()
            await asyncio.sleep(LAG_TICK)
            self.lags.append((loop.time() - t - LAG_TICK) * 1000)
            if len(self.lags) > 100_000:
                del self.lags[:50_000]

    async def cleanup(self) -> None:
        if self.clients:
            await self.leave()
        if self.lag_task is not None:
            self.lag_task.cancel()
        if self.http is not None:
            await self.http.close()
            self.http = None

    # ------------------------------------------------------------- commands

    async def setup(self, base: str, meeting_id: int, clients: list[dict]) -> dict:
        import socketio

        self.base, self.meeting_id = base, meeting_id
        for spec in clients:
            client = Client(spec["index"], spec["role"], spec.get("token"), spec.get("sender"))
            client.sio = socketio.AsyncClient(
                reconnection=False, http_session=self.http, handle_sigint=False
            )
            self._handlers(client)
            self.clients.append(client)
        return {"clients": len(self.clients)}

    def _handlers(self, client: Client) -> None:
        sio = client.sio
        hist = self.hist
        spans = self.spans
        now = time.time

        def on_chat(data) -> None:
            arrived = now()
            try:
                sender, n, sent = data["text"].split(":")
                key = f"{sender}:{n}"
                seq = data["seq"]
            except (KeyError, TypeError, ValueError, AttributeError):
                return
            if key in client.got:
                client.duplicates += 1
                return
            client.got.add(key)
            if seq < client.last_seq:
                client.out_of_order += 1
            client.last_seq = max(client.last_seq, seq)
            ms = (arrived - float(sent)) * 1000
            hist.add(ms)
            span = spans.get(key)
            if span is None:
                spans[key] = [ms, ms]
            elif ms < span[0]:
                span[0] = ms
            elif ms > span[1]:
                span[1] = ms

        def on_presence(data=None) -> None:
            client.presence += 1

        def on_attendance(data=None) -> None:
            client.attendance += 1

        def on_disconnect(reason=None) -> None:
            client.connected = False
            if not self.leaving and client.dropped is None:
                client.dropped = str(reason)

        sio.on("chat:message", on_chat)
        sio.on("presence", on_presence)
        sio.on("attendance:joined", on_attendance)
        sio.on("disconnect", on_disconnect)

    async def join(self, t0: float, rate: float, each_timeout: float) -> dict:
        """Connect and join every client here on the global ramp; each step bounded."""

        async def one(client: Client) -> None:
            at = t0 + client.index / rate
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            start = time.monotonic()
            client.late_ms = (start - at) * 1000
            auth = {"token": client.token} if client.token else None
            try:
                await client.sio.connect(
                    self.base, auth=auth, transports=["websocket"], wait_timeout=each_timeout
                )
                client.connected = True
                connected = time.monotonic()
                client.connect_ms = (connected - start) * 1000
                ack = await client.sio.call(
                    "join", {"meeting_id": self.meeting_id}, timeout=each_timeout
                )
                done = time.monotonic()
                if not (isinstance(ack, dict) and ack.get("ok")):
                    client.error = f"join refused: {ack}"[:300]
                    return
                client.join_ms = (done - start) * 1000
                client.joined = True
            except Exception as exc:  # noqa: BLE001 - every failure is a figure
                client.error = f"{type(exc).__name__}: {exc}"[:300]

        await asyncio.gather(*(one(c) for c in self.clients))
        return {
            "join_ms": [c.join_ms for c in self.clients if c.joined],
            "connect_ms": [c.connect_ms for c in self.clients if c.connect_ms is not None],
            "late_ms_max": max((c.late_ms for c in self.clients), default=0.0),
            "failures": [[c.index, c.role, c.error] for c in self.clients if not c.joined],
            "joined": sum(c.joined for c in self.clients),
        }

    async def chat(
        self, start: float, rate: float, duration: float, senders: int, ack_timeout: float
    ) -> dict:
        """Send this worker's share of the global schedule; wait for every ack (bounded)."""
        import socketio

        total = int(round(rate * duration))
        mine = {c.sender: c for c in self.clients if c.sender is not None and c.joined}
        plan = [
            (start + k / rate, k // senders, mine[k % senders])
            for k in range(total)
            if k % senders in mine
        ]
        acked: list[str] = []
        refused: Counter[str] = Counter()
        ack_ms: list[float] = []
        send_late: list[float] = []
        timeouts = 0
        self.lags.clear()

        async def send(client: Client, n: int) -> None:
            nonlocal timeouts
            key = f"{client.sender}:{n}"
            sent = time.time()
            t = time.monotonic()
            try:
                ack = await client.sio.call(
                    "chat:send", {"text": f"{key}:{sent:.6f}"}, timeout=ack_timeout
                )
            except socketio.exceptions.TimeoutError:
                timeouts += 1
                return
            except Exception as exc:  # noqa: BLE001 - e.g. the connection dropped
                refused[f"send_failed: {type(exc).__name__}"] += 1
                return
            ack_ms.append((time.monotonic() - t) * 1000)
            if isinstance(ack, dict) and ack.get("ok"):
                acked.append(key)
            else:
                code = (
                    (ack or {}).get("error", {}).get("code", "no_ack")
                    if isinstance(ack, dict)
                    else "bad_ack"
                )
                refused[code] += 1

        pending = []
        for at, n, client in plan:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            send_late.append((time.monotonic() - at) * 1000)
            task = asyncio.ensure_future(send(client, n))
            pending.append(task)
            client.sent += 1
        if pending:
            await asyncio.wait(pending, timeout=ack_timeout + 5)
        for task in pending:
            task.cancel()
        lags = list(self.lags)
        return {
            "sent": len(plan),
            "acked": acked,
            "refused": dict(refused),
            "ack_timeouts": timeouts,
            "ack_ms": ack_ms,
            "send_late_ms": percentiles(send_late, (50, 99)),
            "loop_lag_ms": percentiles(lags, (50, 99)),
        }

    async def progress(self, acked: list[str]) -> dict:
        """Acknowledged lines received so far, summed over the clients here."""
        expected = set(acked)
        return {"received": sum(len(c.got & expected) for c in self.clients if c.joined)}

    async def report(self, acked: list[str]) -> dict:
        expected = set(acked)
        missing = unexpected = missing_clients = 0
        for c in self.clients:
            if not c.joined:
                continue
            lost = len(expected - c.got)
            missing += lost
            missing_clients += lost > 0
            unexpected += len(c.got - expected)
        joined = [c for c in self.clients if c.joined]
        return {
            "receivers": len(joined),
            "received": sum(len(c.got) for c in joined),
            "missing": missing,
            "missing_clients": missing_clients,
            "unexpected": unexpected,
            "duplicates": sum(c.duplicates for c in joined),
            "out_of_order": sum(c.out_of_order for c in joined),
            "dropped": [[c.index, c.dropped] for c in self.clients if c.dropped is not None],
            "delivery": self.hist.as_json(),
            "spans": self.spans,
            "presence": [c.presence for c in joined],
            "attendance": [c.attendance for c in joined],
        }

    async def leave(self) -> dict:
        self.leaving = True
        clients, self.clients = self.clients, []
        for i in range(0, len(clients), 50):
            batch = [c.sio.disconnect() for c in clients[i : i + 50] if c.connected]
            if batch:
                try:
                    await asyncio.wait_for(asyncio.gather(*batch, return_exceptions=True), 20)
                except TimeoutError:
                    pass  # the process ends soon anyway; the server sees the sockets close
        return {"left": len(clients)}


def main() -> int:
    # a hard stop even if the coordinator is gone and stdin never closes
    signal.alarm(int(float(os.environ.get("BENCH_ROOM_TIMEOUT", "600"))) + 60)
    worker = Worker()
    return run_worker(
        {
            "setup": worker.setup,
            "join": worker.join,
            "chat": worker.chat,
            "progress": worker.progress,
            "report": worker.report,
            "leave": worker.leave,
        },
        setup=worker.setup_process,
        cleanup=worker.cleanup,
    )
