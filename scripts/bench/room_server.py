"""The room bench's server and audience: ``cunhui serve`` (on SQLite, or a PostgreSQL database
of its own), the meeting, the members' and guests' tokens, the client workers, and cleanup."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import common
from .common import LOOPBACK, REPO, Children, Worker, child_env, free_port, spawn, tail

SCRIPT = REPO / "scripts" / "bench_room.py"


def log(msg: str) -> None:
    common.log(msg, "bench-room")


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
            # every bench client signs in from 127.0.0.1, where a real audience comes from
            # many addresses: the per-address guest cap (30 per 10 min) would refuse
            # `--listeners guest` beyond the thirtieth
            "GUEST_JOINS_PER_ADDRESS": "100000",
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

    st.server = spawn(command, env, log_path, st.children, preexec_fn=pin)
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
