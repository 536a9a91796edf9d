"""The servers under test: a fresh Cunhui server with a live meeting, or the MediaRelay baseline."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .common import (
    LOOPBACK,
    REPO,
    SCRIPT,
    THREAD_NAMES_DIR,
    Children,
    child_env,
    free_port,
    spawn,
    tail,
    tree,
)


@dataclass
class Target:
    """A server under test, as the coordinator sees it."""

    name: str
    base: str
    meeting: str
    token: str | None
    proc: subprocess.Popen
    log: Path
    http: object = None  # aiohttp.ClientSession
    record: bool | None = None  # RECORD_MEETINGS of a Cunhui server (None: the baseline)
    recordings_dir: Path | None = None  # its RECORDINGS_DIR

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return tree(self.pid)

    async def media(self) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.get(
            f"{self.base}/api/meetings/{self.meeting}/media", headers=headers
        ) as response:
            if response.status != 200:
                raise RuntimeError(
                    f"{self.name}: media stats {response.status}: {await response.text()}"
                )
            return await response.json()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def death(self) -> str | None:
        """How the server ended, with the end of its log; None while it runs."""
        code = self.proc.poll()
        if code is None:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"the {self.name} server {how}; last lines of its log:\n{tail(self.log, 20)}"


async def wait_healthy(http, base: str, pid_alive, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive():
            raise RuntimeError(f"server exited during start-up:\n{tail(log_path)}")
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except Exception:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout} s:\n{tail(log_path)}")


async def serve(
    http, command: list[str], env: dict, port: int, log_path: Path, children: Children
) -> tuple[subprocess.Popen, str]:
    """Start a server in its own process group, its output to ``log_path``; wait until healthy."""
    proc = spawn(command, env, log_path, children)
    base = f"http://{LOOPBACK}:{port}"
    await wait_healthy(http, base, lambda: proc.poll() is None, log_path)
    return proc, base


async def start_cunhui(
    http,
    tmp: Path,
    children: Children,
    *,
    record: bool,
    name: str = "fanout",
    log_level: str = "WARNING",
) -> Target:
    """A fresh Cunhui server (its own DATA_DIR and RECORDINGS_DIR under ``tmp``) with a
    live meeting; ``record`` sets RECORD_MEETINGS (recording + live HLS) on or off."""
    cunhui = REPO / ".venv" / "bin" / "cunhui"
    if not cunhui.exists():
        cunhui = Path(sys.executable).parent / "cunhui"
    # the fan-out server keeps the historic paths; the others get their own
    root = tmp if name == "fanout" else tmp / name
    root.mkdir(parents=True, exist_ok=True)
    recordings = root / "recordings"
    env = dict(os.environ)
    env.update(
        {
            "DATA_DIR": str(root / "data"),
            "RECORDINGS_DIR": str(recordings),
            "RECORD_MEETINGS": "1" if record else "0",
            "ICE_HOST_ADDRESSES": LOOPBACK,
            "ICE_SERVERS": "",
            "LOG_LEVEL": log_level,
            "SECRET_KEY": secrets.token_urlsafe(32),
            # every bench viewer connects from 127.0.0.1, where a real audience comes from
            # many addresses: the per-address cap of sessions still connecting (8) would
            # refuse most of a join burst with 429
            "MEDIA_PENDING_PER_ADDRESS": "100000",
            "MEDIA_PENDING_TOTAL": "100000",
            # names the server's threads in /proc (recorder-<id>): per-thread CPU
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(THREAD_NAMES_DIR), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
    )
    # the bench's own SQLite unless asked otherwise (a DATABASE_URL of the shell is not taken
    # by surprise): BENCH_DATABASE_URL, e.g. soak.py --database-url
    env.pop("DATABASE_URL", None)
    if os.environ.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    env.pop("REDIS_URL", None)
    password = secrets.token_urlsafe(12)
    created = subprocess.run(
        [str(cunhui), "admin", "create-user", "bench", f"--password={password}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if created.returncode != 0:
        raise RuntimeError(f"create-user failed: {created.stderr}{created.stdout}")
    port = free_port()
    log_path = tmp / ("server.log" if name == "fanout" else f"{name}-server.log")
    command = [str(cunhui), "serve", "--host", LOOPBACK, "--port", str(port)]
    proc, base = await serve(http, command, env, port, log_path, children)

    async def post(path: str, body: dict, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.post(base + path, json=body, headers=headers) as response:
            data = await response.json()
            if response.status >= 300:
                raise RuntimeError(f"POST {path}: {response.status} {data}")
            return data

    token = (await post("/api/login", {"username": "bench", "password": password}))["token"]
    meeting = await post(
        "/api/meetings", {"title": "bench fan-out", "allow_guests": True, "agenda": []}, token
    )
    await post(f"/api/meetings/{meeting['id']}/start", {}, token)
    return Target(
        name,
        base,
        str(meeting["id"]),
        token,
        proc,
        log_path,
        http,
        record=record,
        recordings_dir=recordings,
    )


async def start_baseline(http, tmp: Path, children: Children, bitrate: int) -> Target:
    port = free_port()
    log_path = tmp / "baseline.log"
    command = [
        sys.executable,
        str(SCRIPT),
        "--baseline-server",
        "--port",
        str(port),
        "--bitrate",
        str(bitrate),
    ]
    proc, base = await serve(http, command, child_env(), port, log_path, children)
    return Target("relay", base, "1", None, proc, log_path, http)


def stop_server(target: Target, children: Children, grace: float = 8.0) -> None:
    try:
        os.killpg(target.pid, signal.SIGINT)  # aiohttp shuts down cleanly on SIGINT
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and target.alive():
        time.sleep(0.1)
    try:
        os.killpg(target.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        target.proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    children.forget(target.pid)
