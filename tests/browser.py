"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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
            viewport=PHONE,
            locale="zh-CN",
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
