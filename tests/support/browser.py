"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest

from .api import PASSWORD, auth

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# The flags that work on these machines (DEVELOPERS.md), plus a fake camera and
# microphone, and loopback ICE candidates (MEDIA-NOTES.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

PHONE = {"width": 390, "height": 844}


def only_loopback_here() -> bool:
    """True inside a network namespace whose only interface is lo."""
    return sorted(os.listdir("/sys/class/net")) == ["lo"]


def require_browser_sandbox() -> None:
    """Skip, loudly, unless Chromium exists and this is a loopback-only namespace."""
    if not Path(CHROMIUM).exists():
        message = f"BROWSER TESTS NOT RUN: no Chromium at {CHROMIUM} (apt-get install chromium)"
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)
    if not only_loopback_here():
        message = (
            "BROWSER TESTS NOT RUN: not inside a loopback-only network namespace; "
            "run them through scripts/test as root"
        )
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)


class Browser:
    """One Chromium process with a fresh profile."""

    #: the browser context's options (a subclass may be a real phone: tests/support/phone.py)
    CONTEXT: dict = {"viewport": PHONE, "locale": "zh-CN"}

    def __init__(self, playwright, *extra_args: str) -> None:
        self._playwright = playwright
        self._args = [*CHROMIUM_ARGS, *extra_args]
        self._profile = tempfile.mkdtemp(prefix="cunhui-chromium-")
        self.context = None

    async def __aenter__(self):
        self.context = await self._playwright.chromium.launch_persistent_context(
            self._profile,
            executable_path=CHROMIUM,
            headless=True,
            args=self._args,
            **self.CONTEXT,
        )
        # an uncaught error in a page script fails the test, even if the page looks fine
        self.page_errors = []
        self.context.on(
            "page", lambda page: page.on("pageerror", lambda e: self.page_errors.append(e))
        )
        return self.context

    async def __aexit__(self, exc_type, *exc_info) -> None:
        await self.context.close()
        shutil.rmtree(self._profile, ignore_errors=True)
        if exc_type is None:
            assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"


async def wait_state(page, state: str, timeout: float = 20_000) -> None:
    await page.wait_for_function(
        "s => document.body.dataset.state === s", arg=state, timeout=timeout
    )


async def clerk_logs_in(page, base: str, next_path: str = "/meetings/new") -> None:
    await page.goto(f"{base}/login?next={next_path}")
    await page.fill("#username", "clerk")
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")
    await page.wait_for_url(f"{base}{next_path}")


async def host_starts_meeting(page, base: str) -> int:
    """Log in, create a meeting with an agenda, press Start. Returns the meeting id."""
    await clerk_logs_in(page, base)
    await page.fill("#title", "第三季度村民会议")
    await page.locator(".agenda-title").first.fill("村道修缮")
    await page.click("#create-button")
    await page.wait_for_url("**/meetings/*/host")
    meeting_id = int(page.url.rstrip("/").split("/")[-2])
    await page.click("#start-button")
    await wait_state(page, "live")
    return meeting_id


class ServerClient:
    """Just enough of aiohttp's TestClient over a TestServer for peers.Viewer."""

    def __init__(self, server) -> None:
        self._server = server
        self._clerk: dict | None = None

    async def clerk_post(self, path: str, body: dict) -> dict:
        """POST ``body`` as the clerk (logged in once), which must be accepted: the JSON."""
        if self._clerk is None:
            self._clerk = await self.clerk_headers()
        response = await self.post(path, json=body, headers=self._clerk)
        assert response.status in (200, 201), await response.text()
        return await response.json()

    async def clerk_headers(self) -> dict:
        """Log the clerk in: the headers that carry its token."""
        login = await self.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        return auth((await login.json())["token"])

    async def get_json(self, path):
        headers = await self.clerk_headers()
        async with aiohttp.ClientSession() as session:
            async with session.get(self._server.make_url(path), headers=headers) as response:
                return await response.json()

    async def post_json(self, path, **kwargs):
        """POST, then the answer's JSON."""
        return await (await self.post(path, **kwargs)).json()

    async def post(self, path, **kwargs):
        session = aiohttp.ClientSession()
        try:
            response = await session.post(self._server.make_url(path), **kwargs)
            await response.read()
            return response
        finally:
            await session.close()
