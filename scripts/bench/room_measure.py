"""What the room bench measures: CPU of the server, its event loop, the client workers,
PostgreSQL and Redis, other jobs on the machine, and the server's answer time."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from urllib.parse import urlsplit

from .common import cpu_seconds, machine_busy_seconds, tree, tree_cpu_seconds, tree_rss_kb
from .room_server import State, log


async def pg_backend_cpu(st: State) -> float | None:
    """CPU seconds of the PostgreSQL backends serving the run's database (same machine)."""
    if not st.pg_database:
        return None
    import asyncpg

    try:
        admin = await asyncpg.connect(st.pg_admin_dsn, timeout=5)
        try:
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", st.pg_database, timeout=5
            )
        finally:
            await admin.close()
    except Exception:  # noqa: BLE001
        return None
    st.pg_pids.update(r["pid"] for r in rows)
    return sum(cpu_seconds(r["pid"]) for r in rows)


def redis_cpu(url: str | None) -> float | None:
    """used_cpu_sys + used_cpu_user of the Redis server, from ``INFO cpu`` (raw RESP)."""
    if not url:
        return None
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2) as s:
            s.sendall(b"INFO cpu\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < int(data[1 : data.index(b"\r\n")]) + 4:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (OSError, ValueError):
        return None
    total = 0.0
    for line in data.decode("ascii", "replace").splitlines():
        if line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            total += float(line.split(":", 1)[1])
    return total


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of ``pid``'s main thread.

    The main thread runs the event loop: on-CPU + waiting near 100 % of the wall
    time means the loop never idles, whatever share of a core it actually got.
    """
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run_ns, wait_ns, _ = f.read().split()
        return int(run_ns) / 1e9, int(wait_ns) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def sample(st: State) -> dict:
    server = tree(st.server.pid) if st.server else []
    return {
        "t": time.monotonic(),
        "server": tree_cpu_seconds(server),
        "server_loop": schedstat(st.server.pid) if st.server else (0.0, 0.0),
        "workers_loop": [schedstat(w.pid) for w in st.workers],
        "rss_kb": tree_rss_kb(server),
        "workers": [cpu_seconds(w.pid) for w in st.workers],
        "coordinator": cpu_seconds(os.getpid()),
        "machine": machine_busy_seconds(),
    }


def all_process_cpu() -> dict[int, float]:
    """utime + stime of every process on the machine (for naming competing jobs)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            seconds = cpu_seconds(int(entry))
            if seconds:
                out[int(entry)] = seconds
    return out


def other_jobs(
    before: dict[int, float],
    after: dict[int, float],
    ours: set[int],
    wall: float,
    skip: tuple[str, ...] = (),
) -> list[dict]:
    """Processes not ours (nor commands starting with ``skip``) above 5 % of a core."""
    found = []
    for pid, seconds in after.items():
        share = pct(seconds - before.get(pid, 0.0), wall)
        if pid in ours or share < 5:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = "?"
        if command.startswith(skip):
            continue
        found.append({"pid": pid, "cpu_percent": share, "command": command[:120]})
    return sorted(found, key=lambda j: -j["cpu_percent"])[:5]


def pct(seconds: float, wall: float) -> float:
    return round(100.0 * seconds / wall, 1) if wall > 0 else 0.0


async def healthz_latencies(http, base: str, until: float) -> list[float]:
    """The server's HTTP answer time once a second: its event loop's lag under the load."""
    out = []
    while time.monotonic() < until and len(out) < 10_000:
        t = time.monotonic()
        try:
            async with http.get(f"{base}/healthz") as response:
                await response.read()
            out.append((time.monotonic() - t) * 1000)
        except Exception:  # noqa: BLE001 - counted as missing samples
            pass
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    return out


async def wait_for_quiet(limit: float, busy_pct: float = 25.0, quiet_s: int = 3) -> dict:
    """Wait (at most ``limit`` s) until the machine's other jobs leave it idle.

    On a shared machine another job (a test suite) competing for the cores
    skews every figure; ``machine_other_cpu_percent`` in the output says how
    much there was during the measurement, this only picks a better moment.
    """
    deadline = time.monotonic() + limit
    quiet, waited = 0, time.monotonic()
    last = machine_busy_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = machine_busy_seconds()
        quiet = quiet + 1 if (now - last) * 100 < busy_pct else 0
        last = now
        if quiet >= quiet_s:
            return {"quiet": True, "waited_s": round(time.monotonic() - waited, 1)}
    log(f"the machine stayed busy for {limit:g} s (other jobs): measuring anyway")
    return {"quiet": False, "waited_s": round(time.monotonic() - waited, 1)}
