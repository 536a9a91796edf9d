"""The server as a real child process (``python -m server``), and the ``cunhui`` CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp

from .api import server_env


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m server serve`` on a free port, with its own folders under ``tmp_path``.

    ``launch()`` starts it, ``wait_ready()`` waits for ``/healthz`` (``start()`` does
    both); a subclass may run it elsewhere (tests/support/netlink.py: in a namespace).
    """

    #: what the command line starts with (a namespace's ``ip netns exec NAME``)
    prefix: list[str] = []

    def __init__(self, tmp_path, *, env: dict | None = None, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.host = host
        self.env = env or {**os.environ, **server_env(tmp_path), "HOST": host}
        self.env["PORT"] = str(self.port)
        self.process: subprocess.Popen | None = None
        self.url = f"http://{host}:{self.port}"
        self.log = tmp_path / "server.log"

    def cli(self, *args) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.env)

    def launch(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "server", "serve",
                 "--host", self.host, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
            )  # fmt: skip

    async def start(self) -> None:
        self.launch()
        await self.wait_ready()

    async def wait_ready(self, seconds: float = 60) -> None:
        """Until ``/healthz`` answers (a busy machine may take a while to start Python)."""
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process and self.process.poll() is None, self.log.read_text()[-3000:]
                try:
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("the server did not start: " + self.log.read_text()[-3000:])

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    async def terminate(self, seconds: float = 30) -> tuple[int, float]:
        """SIGTERM, as a deploy sends it: (exit status, seconds from the signal to the exit).

        Waits without blocking the event loop, so the test's clients hear what the
        server says while it stops; SIGKILL after ``seconds`` (then the status is -9).
        """
        assert self.process is not None
        signalled = time.monotonic()
        self.process.terminate()
        while self.process.poll() is None and time.monotonic() - signalled < seconds:
            await asyncio.sleep(0.02)
        took = time.monotonic() - signalled
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=10), took

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Remote:
    """What Publisher.publish needs of a client: ``post`` with a path, and ``make_url``."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    def post(self, path, **kwargs):
        return self.http.post(self.url + path, **kwargs)

    def make_url(self, path):
        return self.url + path
