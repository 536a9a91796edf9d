"""The room benchmark's coordinator: server, audience, join ramp, chat, figures.

Everything runs on 127.0.0.1: the real server (``cunhui serve``, its own
process group, a temporary DATA_DIR), and ``--workers`` processes of socket.io
clients (``room_clients``). The audience is what a live village meeting looks
like: the clerk's host page (a committee token), ``--senders`` members signed in
with their invites (they write in the chat) and the rest watching from the
meeting link without signing in (anonymous viewers, who only receive), or, with
``--listeners guest``, as named guests.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .common import (
    LOOPBACK,
    REPO,
    Children,
    Worker,
    child_env,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    tail,
    tree,
    tree_cpu_seconds,
    tree_rss_kb,
)
from .room_stats import Histogram, percentiles

SCRIPT = REPO / "scripts" / "bench_room.py"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: the server's chat limit (server/realtime.py CHAT_BURST, CHAT_WINDOW), for the schedule check
CHAT_BURST, CHAT_WINDOW = 5, 10.0
TARGET_P95_MS = 300.0


def log(msg: str) -> None:
    print(f"[bench-room {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class State:
    """What cleanup must undo, whatever happened before."""

    children: Children = field(default_factory=Children)
    tmp: Path | None = None
    server: subprocess.Popen | None = None
    workers: list[Worker] = field(default_factory=list)
    pg_admin_dsn: str | None = None
    pg_database: str | None = None
    pg_pids: set[int] = field(default_factory=set)  # backends serving the run's database
    tasks: list[asyncio.Future] = field(default_factory=list)  # cancelled by cleanup
    failed: bool = False


def loopback_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    parts = urlsplit(url)
    if not parts.scheme.startswith(schemes):
        raise SystemExit(f"{what} must start with {' or '.join(schemes)}: {url}")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"{what} must point at 127.0.0.1 (loopback only): {url}")


# --------------------------------------------------------------------------
# PostgreSQL and Redis (optional)


def _pg_dsn(url: str, database: str | None = None) -> str:
    """asyncpg's DSN from a DATABASE_URL-style URL, optionally naming another database."""
    parts = urlsplit(url)
    path = f"/{database}" if database else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


async def create_pg_database(st: State, url: str) -> str:
    import asyncpg

    st.pg_admin_dsn = _pg_dsn(url)
    admin = await asyncpg.connect(st.pg_admin_dsn, timeout=5)
    try:
        name = f"cunhui_bench_{secrets.token_hex(4)}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        st.pg_database = name
    finally:
        await admin.close()
    log(f"PostgreSQL: created database {name}")
    return _pg_dsn(url, name)


async def drop_pg_database(st: State) -> None:
    if not st.pg_database:
        return
    import asyncpg

    try:
        admin = await asyncpg.connect(st.pg_admin_dsn, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE "{st.pg_database}" WITH (FORCE)', timeout=20)
        finally:
            await admin.close()
        log(f"PostgreSQL: dropped database {st.pg_database}")
    except Exception as exc:  # noqa: BLE001 - say so, the run's figures still stand
        log(f"PostgreSQL: could not drop database {st.pg_database}: {exc!r}")
    st.pg_database = None


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


# --------------------------------------------------------------------------
# The server


async def start_server(st: State, args, http) -> tuple[str, str]:
    """Start ``cunhui serve`` with a committee account; return (base URL, password)."""
    cunhui = REPO / ".venv" / "bin" / "cunhui"
    if not cunhui.exists():
        cunhui = Path(sys.executable).parent / "cunhui"
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "PUBLIC_URL", "TRUSTED_PROXIES", "ICE_SERVERS"):
        env.pop(name, None)
    env.update(
        {
            "DATA_DIR": str(st.tmp / "data"),
            "RECORDINGS_DIR": str(st.tmp / "data" / "rec"),
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ICE_HOST_ADDRESSES": LOOPBACK,
            "ICE_SERVERS": "",
            "LOG_LEVEL": args.server_log_level,
        }
    )
    if args.database_url:
        env["DATABASE_URL"] = await create_pg_database(st, args.database_url)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    password = secrets.token_urlsafe(12)
    created = await asyncio.create_subprocess_exec(
        str(cunhui),
        "admin",
        "create-user",
        "bench",
        f"--password={password}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    st.children.started(created.pid)
    out, _ = await asyncio.wait_for(created.communicate(), 120)
    st.children.forget(created.pid)
    if created.returncode != 0:
        raise RuntimeError(f"cunhui admin create-user failed: {out.decode(errors='replace')}")
    port = free_port()
    log_path = st.tmp / "server.log"
    command = [str(cunhui), "serve", "--host", LOOPBACK, "--port", str(port)]
    if args.profile_server:  # cProfile writes its file when the server stops on SIGINT
        command = [
            str(cunhui.parent / "python"),
            "-m",
            "cProfile",
            "-o",
            str(Path(args.profile_server).resolve()),
            *command,
        ]
    pin = None
    if args.pin_server is not None:  # every thread of the server on that core alone

        def pin() -> None:
            os.sched_setaffinity(0, {args.pin_server})

    with open(log_path, "ab") as sink:
        st.server = subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=pin,
        )
    st.children.started(st.server.pid)
    base = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if st.server.poll() is not None:
            raise RuntimeError(
                f"the server exited during start-up (status "
                f"{st.server.returncode}):\n{tail(log_path, 40)}"
            )
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return base, password
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server was not healthy after 60 s:\n{tail(log_path, 40)}")


def stop_server(st: State) -> None:
    proc, st.server = st.server, None
    if proc is None:
        return
    for sig, grace in ((signal.SIGINT, 12.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)  # its own group (start_new_session): pgid == pid
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    st.children.forget(proc.pid)


def server_log_problems(st: State) -> dict | None:
    """Warnings, errors and tracebacks the server logged: they matter for honest figures."""
    if st.tmp is None:
        return None
    lines = tail(st.tmp / "server.log", 100_000).splitlines()
    errors = [
        ln for ln in lines if " ERROR " in ln or ln.startswith("Traceback") or " CRITICAL " in ln
    ]
    warnings = [ln for ln in lines if " WARNING " in ln]
    if not errors and not warnings:
        return None
    return {
        "errors": len(errors),
        "warnings": len(warnings),
        "last": [ln[:400] for ln in (errors or warnings)[-10:]],
    }


# --------------------------------------------------------------------------
# The meeting and its audience


class Api:
    def __init__(self, http, base: str) -> None:
        self.http, self.base = http, base

    async def post(
        self, path: str, body: dict, token: str | None = None, expect: tuple[int, ...] = (200, 201)
    ) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.post(self.base + path, json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status not in expect:
                raise RuntimeError(f"POST {path}: {response.status} {data}")
            return data


async def prepare_meeting(api: Api, password: str) -> tuple[int, str, str]:
    """Log in, create a meeting that allows guests and start it: (id, code, committee token)."""
    token = (await api.post("/api/login", {"username": "bench", "password": password}))["token"]
    meeting = await api.post(
        "/api/meetings", {"title": "bench room", "allow_guests": True, "agenda": []}, token
    )
    await api.post(f"/api/meetings/{meeting['id']}/start", {}, token)
    return meeting["id"], meeting["code"], token


async def member_tokens(api: Api, token: str, count: int) -> list[str]:
    """``count`` members added to the roll and signed in with their invites (8 at a time)."""
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with gate:
            added = await api.post("/api/members", {"name": f"村民{i:04d}"}, token)
            return (await api.post("/api/join", {"invite": added["invite"]}))["token"]

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def guest_tokens(api: Api, code: str, count: int) -> list[str]:
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with gate:
            return (await api.post("/api/join", {"meeting_code": code, "name": f"访客{i:04d}"}))[
                "token"
            ]

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def sender_slots(clients: int, senders: int) -> list[int]:
    """Client indexes of the senders, spread evenly over the join order after the host (0)."""
    return [1 + (i * (clients - 1)) // senders for i in range(senders)]


# --------------------------------------------------------------------------
# Measuring


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


# --------------------------------------------------------------------------
# The run


async def start_workers(st: State, count: int, timeout: float) -> None:
    for i in range(count):
        log_path = st.tmp / f"clients-{i}.log"
        with open(log_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPT),
                "--worker",
                "clients",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                limit=2**26,
                env=child_env({"BENCH_ROOM_TIMEOUT": str(int(timeout))}),
            )
        st.children.started(proc.pid)
        st.workers.append(Worker("clients", proc, log_path))


async def run(st: State, args) -> dict:
    started = time.monotonic()
    import aiohttp

    if args.pin_server is not None:  # this process and the client workers on the other cores
        others = set(os.sched_getaffinity(0)) - {args.pin_server}
        if not others:
            raise RuntimeError(f"--pin-server {args.pin_server}: no other core left")
        os.sched_setaffinity(0, others)

    st.tmp = Path(tempfile.mkdtemp(prefix="bench-room-"))
    log(f"logs in {st.tmp}")
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http:
        base, password = await start_server(st, args, http)
        api = Api(http, base)
        meeting_id, code, host_token = await prepare_meeting(api, password)
        t = time.monotonic()
        members = await member_tokens(api, host_token, args.senders)
        listeners = args.clients - 1 - args.senders
        guests = await guest_tokens(api, code, listeners) if args.listeners == "guest" else []
        log(
            f"meeting {meeting_id} live; {args.senders} members"
            + (f" and {listeners} guests" if guests else "")
            + f" signed in in {time.monotonic() - t:.1f} s"
        )

        slots = set(sender_slots(args.clients, args.senders))
        specs, member_iter, guest_iter, sender_no = [], iter(members), iter(guests), 0
        for index in range(args.clients):
            if index == 0:
                specs.append({"index": 0, "role": "committee", "token": host_token})
            elif index in slots:
                specs.append(
                    {
                        "index": index,
                        "role": "member",
                        "token": next(member_iter),
                        "sender": sender_no,
                    }
                )
                sender_no += 1
            elif args.listeners == "guest":
                specs.append({"index": index, "role": "guest", "token": next(guest_iter)})
            else:
                specs.append({"index": index, "role": "viewer"})

        await start_workers(st, args.workers, args.timeout)
        await asyncio.gather(
            *(
                w.call(
                    "setup",
                    timeout=60,
                    base=base,
                    meeting_id=meeting_id,
                    clients=[s for s in specs if s["index"] % args.workers == i],
                )
                for i, w in enumerate(st.workers)
            )
        )

        # ---- join: client i at t0 + i / join_rate, spread over the workers
        log(f"joining {args.clients} clients at {args.join_rate:g}/s over {args.workers} workers")
        t0 = time.monotonic() + 0.5
        a = sample(st)
        ramp = args.clients / args.join_rate
        joins = await asyncio.gather(
            *(
                w.call(
                    "join",
                    timeout=ramp + args.join_timeout * 2 + 30,
                    t0=t0,
                    rate=args.join_rate,
                    each_timeout=args.join_timeout,
                )
                for w in st.workers
            )
        )
        b = sample(st)
        join_wall = b["t"] - a["t"]
        join_ms = [v for j in joins for v in j["join_ms"]]
        connect_ms = [v for j in joins for v in j["connect_ms"]]
        failures = [f for j in joins for f in j["failures"]]
        joined = sum(j["joined"] for j in joins)
        log(
            f"joined {joined}/{args.clients} in {join_wall:.1f} s; join p50/p95/max "
            f"{percentiles(join_ms)} ms" + (f"; first failure: {failures[0]}" if failures else "")
        )
        join_phase = {
            "seconds": round(join_wall, 1),
            "server_cpu_percent": pct(b["server"] - a["server"], join_wall),
            "generator_late_ms_max": round(max(j["late_ms_max"] for j in joins), 1),
        }
        await asyncio.sleep(args.settle)  # presence bursts and attendance broadcasts end

        # ---- chat: a steady total rate from the senders, measured over [start, end]
        per_sender_interval = args.senders / args.rate
        within_limit = per_sender_interval * (CHAT_BURST - 1) > CHAT_WINDOW
        log(
            f"chat: {args.rate:g} msg/s for {args.duration:g} s from {args.senders} senders "
            f"(each every {per_sender_interval:.1f} s"
            + ("" if within_limit else "; ABOVE the server's limit of 5 per 10 s")
            + ")"
        )
        start = time.monotonic() + 1.0
        end = start + args.duration
        chats_task = asyncio.gather(
            *(
                w.call(
                    "chat",
                    timeout=args.duration + args.ack_timeout + 30,
                    start=start,
                    rate=args.rate,
                    duration=args.duration,
                    senders=args.senders,
                    ack_timeout=args.ack_timeout,
                )
                for w in st.workers
            )
        )
        healthz_task = asyncio.ensure_future(healthz_latencies(http, base, end))
        st.tasks += [chats_task, healthz_task]
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        a = sample(st)
        everyone_a = all_process_cpu()
        pg_a, redis_a = await pg_backend_cpu(st), redis_cpu(args.redis_url)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        b = sample(st)
        everyone_b = all_process_cpu()
        ours_pids = set(tree(st.server.pid)) | {w.pid for w in st.workers} | {os.getpid()}
        pg_b, redis_b = await pg_backend_cpu(st), redis_cpu(args.redis_url)
        chats = await chats_task
        healthz = await healthz_task
        wall = b["t"] - a["t"]
        acked = [k for c in chats for k in c["acked"]]
        sent = sum(c["sent"] for c in chats)

        # ---- drain: wait (bounded) until every receiver has every acknowledged line
        expected = len(acked) * joined
        received = 0
        drain_until = time.monotonic() + args.drain
        while time.monotonic() < drain_until:
            received = sum(
                p["received"]
                for p in await asyncio.gather(
                    *(w.call("progress", timeout=30, acked=acked) for w in st.workers)
                )
            )
            if received >= expected:
                break
            await asyncio.sleep(0.25)
        reports = await asyncio.gather(
            *(w.call("report", timeout=60, acked=acked) for w in st.workers)
        )
        rss_mb = round(b["rss_kb"] / 1024, 1)
        log("leaving")
        try:
            await asyncio.gather(*(w.call("leave", timeout=60) for w in st.workers))
        except Exception as exc:  # noqa: BLE001 - the figures are in already
            log(f"leave: {exc!r}")
        await asyncio.sleep(1.0)
        problems = server_log_problems(st)

    # ---- figures
    delivery = Histogram.merged([r["delivery"] for r in reports])
    refused: dict[str, int] = {}
    for c in chats:
        for code_, n in c["refused"].items():
            refused[code_] = refused.get(code_, 0) + n
    rate_limited = refused.pop("rate_limited", 0)
    breakdown = {
        "join_failures": len(failures),
        "chat_refused": sum(refused.values()),
        "chat_ack_timeouts": sum(c["ack_timeouts"] for c in chats),
        "missing_deliveries": sum(r["missing"] for r in reports),
        "duplicate_deliveries": sum(r["duplicates"] for r in reports),
        "out_of_order_deliveries": sum(r["out_of_order"] for r in reports),
        "dropped_connections": sum(len(r["dropped"]) for r in reports),
        "server_log_errors": problems["errors"] if problems else 0,
    }
    errors = sum(breakdown.values())
    worker_cpu = [pct(y - x, wall) for x, y in zip(a["workers"], b["workers"])]
    coordinator_cpu = pct(b["coordinator"] - a["coordinator"], wall)
    delivery_summary = delivery.summary((50, 95, 99))
    # per line: the first receiver's latency (the server's work before the broadcast,
    # the database commit included) and last minus first (the broadcast's own length)
    spans: dict[str, list[float]] = {}
    for r in reports:
        for key, (lo, hi) in r["spans"].items():
            mine = spans.setdefault(key, [lo, hi])
            mine[0], mine[1] = min(mine[0], lo), max(mine[1], hi)
    p95 = delivery_summary["p95"]
    target_met = (
        errors == 0
        and joined == args.clients
        and p95 is not None
        and p95 < TARGET_P95_MS
        and args.clients >= 500
    )
    audience = (
        f"1 host (committee token), {args.senders} members signed in with their "
        f"invites (they send), {listeners} "
        + (
            "guests (POST /api/join {meeting_code, name}; they only receive)"
            if args.listeners == "guest"
            else "anonymous viewers (no token, like the watch page opened from the meeting "
            "link without signing in; they only receive)"
        )
    )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "clients": args.clients,
        "senders": args.senders,
        "audience": audience,
        "rate_msgs_per_s": args.rate,
        "duration_s": args.duration,
        "workers": args.workers,
        "join_rate_per_s": args.join_rate,
        "pin_server": args.pin_server,
        "joined": joined,
        "join_ms": percentiles(join_ms),
        "connect_ms": percentiles(connect_ms),
        "delivery_ms": delivery_summary,
        "delivery_first_receiver_ms": percentiles([lo for lo, _ in spans.values()], (50, 95)),
        "delivery_spread_ms": percentiles([hi - lo for lo, hi in spans.values()], (50, 95)),
        "chat_ack_ms": percentiles([v for c in chats for v in c["ack_ms"]], (50, 95, 99)),
        "messages_planned": int(round(args.rate * args.duration)),
        "messages_sent": sent,
        "messages_acked": len(acked),
        "deliveries_expected": expected,
        "deliveries_received": sum(r["received"] for r in reports),
        # lines whose ack timed out or failed but which reached clients anyway (not errors)
        "deliveries_of_unacked_lines": sum(r["unexpected"] for r in reports),
        "errors": errors,
        "error_breakdown": breakdown,
        "chat_refusals": refused,
        "rate_limited": rate_limited,
        "schedule_within_chat_limit": within_limit,
        "server_cpu_percent": pct(b["server"] - a["server"], wall),
        # the event loop's thread: on a CPU, and runnable but waiting for one (other
        # processes had the cores); together near 100 % = the loop is saturated
        "server_loop_percent": {
            "on_cpu": pct(b["server_loop"][0] - a["server_loop"][0], wall),
            "waiting_for_cpu": pct(b["server_loop"][1] - a["server_loop"][1], wall),
        },
        # the server's CPU per (line, receiver) while the chat ran: its cost of a delivery
        "server_cpu_us_per_delivery": (
            round((b["server"] - a["server"]) * 1e6 / (len(acked) * joined), 1)
            if acked and joined
            else None
        ),
        "server_rss_mb": rss_mb,
        "server_healthz_ms": percentiles(healthz, (50, 95)),
        "generator_cpu_percent": round(sum(worker_cpu) + coordinator_cpu, 1),
        "generator": {
            "workers_cpu_percent": worker_cpu,
            "workers_waiting_for_cpu_percent": [
                pct(y[1] - x[1], wall) for x, y in zip(a["workers_loop"], b["workers_loop"])
            ],
            "coordinator_cpu_percent": coordinator_cpu,
            "loop_lag_ms_p99_max": max((c["loop_lag_ms"]["p99"] or 0) for c in chats),
            "loop_lag_ms_max": max((c["loop_lag_ms"]["max"] or 0) for c in chats),
            "send_late_ms_max": max((c["send_late_ms"]["max"] or 0) for c in chats),
        },
        "machine_busy_percent": pct(b["machine"] - a["machine"], wall),
        "cpus": os.cpu_count(),
        "join_phase": join_phase,
        "presence": {
            "presence_events_per_client": percentiles(
                [v for r in reports for v in r["presence"]], (50,)
            ),
            "attendance_joined_per_client": percentiles(
                [v for r in reports for v in r["attendance"]], (50,)
            ),
        },
        "database": "postgresql" if args.database_url else "sqlite",
        "redis": bool(args.redis_url),
        "target": f"{TARGET_P95_MS:g} ms delivery p95 with 500+ clients and zero errors",
        "target_met": target_met,
        "window_s": round(wall, 2),
        "run_seconds": round(time.monotonic() - started, 1),
        "machine": machine_info(),
        "code": code_info(),
    }
    ours = result["server_cpu_percent"] + result["generator_cpu_percent"]
    if pg_a is not None and pg_b is not None:
        result["database_cpu_percent"] = pct(pg_b - pg_a, wall)
        ours += result["database_cpu_percent"]
    if redis_a is not None and redis_b is not None:
        result["redis_cpu_percent"] = pct(redis_b - redis_a, wall)
        ours += result["redis_cpu_percent"]
    # anything else on the machine during the window (other jobs skew every figure)
    result["machine_other_cpu_percent"] = round(max(0.0, result["machine_busy_percent"] - ours), 1)
    result["other_jobs"] = other_jobs(
        everyone_a,
        everyone_b,
        ours_pids | st.pg_pids,
        wall,
        ("redis-server",) if args.redis_url else (),
    )
    if failures:
        result["join_failures_first"] = failures[:5]
    dropped = [d for r in reports for d in r["dropped"]]
    if dropped:
        result["dropped_first"] = dropped[:5]
    if problems:
        result["server_log"] = problems
    if delivery.negative:
        result["negative_latencies"] = delivery.negative
    return result


def machine_info() -> dict:
    from importlib.metadata import version

    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "python": platform.python_version(),
        "python_socketio": version("python-socketio"),
        "python_engineio": version("python-engineio"),
        "aiohttp": version("aiohttp"),
        "kernel": platform.release(),
    }


def code_info() -> dict:
    def git(*argv: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *argv], capture_output=True, text=True, timeout=10
            ).stdout.rstrip("\n")
        except Exception:  # noqa: BLE001
            return ""

    changed = [
        line[3:] for line in git("status", "--porcelain", "--", "server").splitlines() if line
    ]
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_server_files": changed,
    }


async def cleanup(st: State, keep_logs: bool) -> None:
    for task in st.tasks:
        task.cancel()
    if st.tasks:
        try:
            await asyncio.wait_for(asyncio.gather(*st.tasks, return_exceptions=True), 5)
        except (TimeoutError, asyncio.CancelledError):
            pass
    for worker in st.workers:
        if st.failed and worker.proc.returncode is None:
            try:  # it may be mid-command: no polite quit
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(worker.stop(st.children), 5 if st.failed else 30)
        except Exception:  # noqa: BLE001
            pass
    st.workers = []
    await asyncio.to_thread(stop_server, st)
    await drop_pg_database(st)
    st.children.kill_all(grace=3)
    if st.tmp is not None:
        if keep_logs or st.failed:
            log(f"logs kept in {st.tmp}")
        else:
            shutil.rmtree(st.tmp, ignore_errors=True)


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


def main(args) -> int:
    st = State()

    def hard_stop(*_) -> None:  # the event loop itself is stuck: end everything now
        st.children.kill_all(grace=1)
        print(
            json.dumps(
                {
                    "error": f"hard timeout after {args.timeout:g} s; logs in "
                    f"{st.tmp}; PostgreSQL database left: {st.pg_database}"
                }
            )
        )
        sys.stdout.flush()
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout + args.quiet_wait) + 30)

    async def go() -> dict:
        quiet = None
        if args.quiet_wait > 0:
            log(f"waiting up to {args.quiet_wait:g} s for the machine to be idle")
            quiet = await wait_for_quiet(args.quiet_wait)
        try:
            result = await asyncio.wait_for(run(st, args), args.timeout)
            if quiet is not None:
                result["machine_quiet_at_start"] = quiet
            return result
        except TimeoutError:
            st.failed = True
            return {
                "error": f"timeout: the run took longer than --timeout {args.timeout:g} s",
                "server_log": server_log_problems(st),
            }
        except Exception as exc:  # noqa: BLE001 - reported as JSON, with the logs kept
            st.failed = True
            return {"error": f"{type(exc).__name__}: {exc}", "server_log": server_log_problems(st)}
        finally:
            await cleanup(st, args.keep_logs)

    result = asyncio.run(go())
    signal.alarm(0)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    sys.stdout.flush()
    if "error" in result:
        return 1
    return 0 if result["target_met"] or args.clients < 500 else 2
