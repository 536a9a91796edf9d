"""Slow HTTP clients (slowloris, slow bodies, too many connections) against ``cunhui serve``.

Before: aiohttp read a request head for 75 s (its keep-alive timer) however
slowly it trickled in, and a request body for ever (a POST trickling one byte
every 0.5 s was still open after 90 s). The server now closes a connection
that has not sent its request head within HTTP_HEADER_TIMEOUT, and answers 408
to a body that does not keep up, while sockets, long-polls and everyone else's
requests carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest
import socketio
from aiohttp import web

from server.app import create_app
from server.http.connections import BUSY_RESPONSE, ConnectionGuard, GuardedAppRunner

from .support.api import PASSWORD, auth
from .support.processes import ServerProcess, free_port

TIMEOUT = 2.0  # HTTP_HEADER_TIMEOUT of the server under attack
ATTACKERS = 50


@pytest.fixture
def server(tmp_path):
    process = ServerProcess(tmp_path)
    process.env["HTTP_HEADER_TIMEOUT"] = str(TIMEOUT)
    yield process
    process.stop()


async def trickle(
    port: int, data: bytes, *, prefix: bytes = b"", every: float = 0.5, limit: float = 30.0
) -> tuple[float, bytes]:
    """Send ``prefix``, then ``data`` one byte every ``every`` s.

    Returns the seconds until the server closed the connection and what it answered.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = b""
    writer.write(prefix)
    try:
        for i in range(len(data)):
            if time.monotonic() - started > limit:
                break
            try:
                writer.write(data[i : i + 1])
                await writer.drain()
                chunk = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - started, answer
            if not chunk:  # EOF: closed by the server
                return time.monotonic() - started, answer
            answer += chunk
            # an answer came: read on until the server closes
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                while chunk:
                    chunk = await asyncio.wait_for(reader.read(4096), limit)
                    answer += chunk
            return time.monotonic() - started, answer
        return float("inf"), answer  # never closed
    finally:
        writer.close()


HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Padding: slowloris\r\n" * 200


async def trickle_after_a_request(port: int) -> float:
    """One honest request on a kept-alive connection, then the next head trickled.

    Returns the seconds from the first trickled byte until the server closed.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        await reader.readexactly(length)
        started = time.monotonic()
        for i in range(len(HEAD)):
            writer.write(HEAD[i : i + 1])
            try:
                if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        return time.monotonic() - started
    finally:
        writer.close()


async def test_slowloris_is_cut_off_while_others_are_served(server):
    created = server.cli("admin", "create-user", "clerk", "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    await server.start()
    async with aiohttp.ClientSession() as http:
        token = (
            await (
                await http.post(
                    server.url + "/api/login", json={"username": "clerk", "password": PASSWORD}
                )
            ).json()
        )["token"]
        meeting = await (
            await http.post(
                server.url + "/api/meetings",
                json={"title": "村民会议", "allow_guests": True},
                headers=auth(token),
            )
        ).json()
        await http.post(f"{server.url}/api/meetings/{meeting['id']}/start", headers=auth(token))

        # a WebSocket member and a long-polling one, connected before the attack
        members = []
        for transports in (["websocket"], ["polling"]):
            member = socketio.AsyncClient(reconnection=False)
            await member.connect(
                server.url, auth={"token": token}, transports=transports, wait_timeout=5
            )
            ack = await member.call("join", {"meeting_id": meeting["id"]}, timeout=5)
            assert ack["ok"], ack
            members.append(member)
        connected_at = time.monotonic()

        latencies: list[float] = []
        attack_running = True

        async def poll_health() -> None:
            while attack_running:
                began = time.monotonic()
                async with http.get(server.url + "/healthz") as response:
                    assert response.status == 200, await response.text()
                latencies.append(time.monotonic() - began)
                await asyncio.sleep(0.2)

        poller = asyncio.ensure_future(poll_health())
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", server.port)
        silent_since = time.monotonic()
        try:
            body_head = (
                b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            )
            slow_body = asyncio.ensure_future(
                trickle(server.port, b"{" + b" " * 4998 + b"}", prefix=body_head)
            )
            kept_alive = asyncio.ensure_future(trickle_after_a_request(server.port))
            results = await asyncio.gather(*(trickle(server.port, HEAD) for _ in range(ATTACKERS)))
            # nothing at all sent: closed too
            assert await asyncio.wait_for(silent_reader.read(), 3 * TIMEOUT) == b""
            silent_after = time.monotonic() - silent_since
            body_after, body_answer = await slow_body
            kept_alive_after = await kept_alive
        finally:
            attack_running = False
            await poller
            silent.close()

        closed_after = sorted(seconds for seconds, _ in results)
        # every trickler was cut off after about the timeout (not 75 s, not never)
        assert closed_after[-1] <= 3 * TIMEOUT, closed_after
        assert closed_after[0] >= TIMEOUT * 0.9, closed_after
        assert all(answer == b"" for _, answer in results)
        assert TIMEOUT * 0.9 <= silent_after <= 3 * TIMEOUT, silent_after
        # on a kept-alive connection, the next request's head has the same deadline
        assert TIMEOUT * 0.9 <= kept_alive_after <= 3 * TIMEOUT, kept_alive_after
        # the slow body got a 408 with the contract's error shape, then the connection closed
        assert body_after <= 3 * TIMEOUT + 1, body_after
        assert body_answer.startswith(b"HTTP/1.1 408"), body_answer[:200]
        assert b'"request_timeout"' in body_answer

        # everyone else was served all along, and quickly
        assert len(latencies) >= 5, latencies
        assert max(latencies) < 1.0, latencies

        # the sockets outlive the header timeout several times over, and still work
        await asyncio.sleep(connected_at + 3 * TIMEOUT - time.monotonic())
        for member in members:
            assert member.connected
            line = await member.call("chat:send", {"text": "还在"}, timeout=5)
            assert line["ok"], line
            await member.disconnect()


async def test_connections_per_address_are_capped(settings):
    """One address may hold only so many connections; the next is told 503 and closed."""
    guard = ConnectionGuard(30.0, per_address=3, exempt_loopback=False)
    runner = GuardedAppRunner(create_app(settings), guard)
    await runner.setup()
    port = free_port()
    held = []
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        for _ in range(3):
            held.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.1)
        assert guard.open["127.0.0.1"] == 3
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert refused == BUSY_RESPONSE and refused.startswith(b"HTTP/1.1 503")
        assert guard.refused == 1

        # one goes away: the address may connect again, and is served
        held.pop()[1].close()
        for _ in range(50):
            if guard.open["127.0.0.1"] < 3:
                break
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        for _, writer in held:
            writer.close()
        await runner.cleanup()


def test_loopback_and_trusted_proxies_are_not_capped():
    """Every client of a reverse proxy comes from its address: the cap would be theirs."""
    guard = ConnectionGuard(20.0, exempt=("10.1.0.0/16",))
    assert not guard.counts("127.0.0.1") and not guard.counts("::1")
    assert not guard.counts("10.1.2.3")
    assert guard.counts("192.0.2.7") and guard.counts("2001:db8::1")
