"""A real network link to cut: two network namespaces joined by a veth pair.

The server runs in ``near``, Chromium in ``far`` (MEDIA-NOTES' recipe). Taking the far
end down is a phone losing its network: the browser sees its interface go, the TCP
connection stalls, nothing is emulated. Every name and address lives only in the two
namespaces the test creates and deletes; the 10.x addresses reach nothing else.

The test process itself stays where it is; what it does in ``near`` (the API, a
python-socketio client) runs on an event loop in a thread that entered that namespace
(``setns`` applies to one thread only).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from .api import PASSWORD, auth
from .browser import CHROMIUM, CHROMIUM_ARGS
from .processes import ServerProcess

CLONE_NEWNET = 0x40000000


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def require_namespaces() -> None:
    """Skip, loudly, where namespaces cannot be made (not root, no iproute2)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        message = "LINK-CUT TEST NOT RUN: needs root and iproute2 to create network namespaces"
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)


class LinkedNamespaces:
    """``near`` (10.213.14.1) and ``far`` (10.213.14.2), joined by a veth pair."""

    NEAR_ADDRESS = "10.213.14.1"
    FAR_ADDRESS = "10.213.14.2"

    def __init__(self) -> None:
        tag = f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.near = f"cunhui-near-{tag}"
        self.far = f"cunhui-far-{tag}"

    def __enter__(self) -> LinkedNamespaces:
        try:
            ip("netns", "add", self.near)
            ip("netns", "add", self.far)
            ip("link", "add", "v-near", "netns", self.near, "type", "veth",
               "peer", "name", "v-far", "netns", self.far)  # fmt: skip
            ip("-n", self.near, "addr", "add", f"{self.NEAR_ADDRESS}/30", "dev", "v-near")
            ip("-n", self.far, "addr", "add", f"{self.FAR_ADDRESS}/30", "dev", "v-far")
            for ns, dev in ((self.near, "v-near"), (self.far, "v-far")):
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for ns in (self.far, self.near):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    def cut(self) -> None:
        """The phone's network goes: its end of the link is down."""
        ip("-n", self.far, "link", "set", "v-far", "down")

    def restore(self) -> None:
        ip("-n", self.far, "link", "set", "v-far", "up")

    def move_far(self, address: str) -> None:
        """The phone's address changes at once (Wi-Fi hands over to 4G): the old one is gone.

        ``address`` (e.g. 10.213.15.2) gets a host route each way, so the server keeps
        its own address and the phone reaches it from the new one only.
        """
        ip("-n", self.far, "addr", "flush", "dev", "v-far")
        ip("-n", self.far, "addr", "add", f"{address}/32", "dev", "v-far")
        ip("-n", self.far, "route", "replace", f"{self.NEAR_ADDRESS}/32", "dev", "v-far")
        ip("-n", self.near, "route", "replace", f"{address}/32", "dev", "v-near")


class NamespaceLoop:
    """An asyncio loop on a thread that lives in network namespace ``netns``."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    def __enter__(self) -> NamespaceLoop:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    async def run(self, coro):
        """Run ``coro`` on the namespace's loop; its result."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


class NamespacedServer(ServerProcess):
    """``python -m server serve`` inside ``netns``, listening on ``address`` only.

    ``launch()`` from anywhere; ``wait_ready()`` must run in the namespace
    (``NamespaceLoop.run``), where ``address`` is reachable.
    """

    def __init__(self, env: dict, netns: str, address: str, log: Path) -> None:
        super().__init__(log.parent, env=dict(env), host=address)
        self.log = log
        self.prefix = ["ip", "netns", "exec", netns]


def secure_origin(base: str) -> str:
    """A Chromium flag: the server's plain-HTTP address counts as a secure origin, as over
    HTTPS in a deployment (the camera needs one; the page's offers then carry host
    candidates)."""
    return f"--unsafely-treat-insecure-origin-as-secure={base}"


@contextlib.asynccontextmanager
async def chromium_in(playwright, netns: str, viewport: dict, *extra_args: str):
    """A fresh Chromium whose network is namespace ``netns``: its context.

    ``extra_args``: more Chromium flags (e.g. an autoplay policy)."""
    folder = Path(tempfile.mkdtemp(prefix="cunhui-chromium-"))
    wrapper = folder / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    context = await playwright.chromium.launch_persistent_context(
        str(folder / "profile"),
        executable_path=str(wrapper),
        headless=True,
        args=[*CHROMIUM_ARGS, *extra_args],
        viewport=viewport,
        locale="zh-CN",
    )
    try:
        yield context
    finally:
        await context.close()
        shutil.rmtree(folder, ignore_errors=True)


async def setup_meeting(base: str) -> tuple[dict, dict, str]:
    """(In the server's namespace.) A member, a live meeting open to guests, the clerk's token.

    The server must have a committee account ``clerk`` with the tests' ``PASSWORD``.
    """
    async with aiohttp.ClientSession(base_url=base) as http:
        login = await http.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        token = (await login.json())["token"]

        async def post(path: str, body: dict) -> dict:
            async with http.post(path, json=body, headers=auth(token)) as response:
                assert response.status in (200, 201), await response.text()
                return await response.json()

        member = await post("/api/members", {"name": "在外打工的李四"})
        meeting = await post(
            "/api/meetings", {"title": "村民大会", "allow_guests": True, "agenda": []}
        )
        await post(f"/api/meetings/{meeting['id']}/start", {})
    return member, meeting, token
