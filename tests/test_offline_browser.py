"""A phone that loses its network is told so, and comes back by itself (issue 14, wall 7).

A real link cut, not the browser's offline emulation: the server runs in one network
namespace, Chromium (360×740, zh-CN) in another, joined by a veth pair that the test
takes down for about ten seconds (tests/support/netlink.py). The member must see
"网络已断开，正在重新连接…" at once, the "N人在线" line must not keep showing a count it
no longer knows, a chat line typed while down must reach the room after the rejoin
(never "join a meeting first"), a hand raised while down must say it was not sent,
and after the link returns the banner goes and the presence line is live again.

Runs where network namespaces can be made (root, iproute2): from the loopback-only
namespace of the browser tests it creates two namespaces of its own and deletes them.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import async_playwright

from .support.api import PASSWORD, server_env
from .support.browser import require_browser_sandbox
from .support.netlink import (
    LinkedNamespaces,
    NamespacedServer,
    NamespaceLoop,
    chromium_in,
    require_namespaces,
    setup_meeting,
)
from .support.processes import run_cli
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}
LINE = "断网时写的一句话"

BANNER_SHOWN = """() => {
  const banner = document.getElementById('connection-banner');
  return banner && !banner.hidden && banner.getBoundingClientRect().top >= 0
    && banner.textContent.includes('网络已断开，正在重新连接');
}"""
BANNER_GONE = "() => document.getElementById('connection-banner').hidden"
#: the presence line as a reader sees it: its text, or null while it is not shown
PRESENCE = """() => {
  const line = document.getElementById('room-presence');
  const style = getComputedStyle(line);
  const box = line.getBoundingClientRect();
  return style.visibility === 'visible' && box.height > 0 ? line.textContent : null;
}"""


class Url:
    """What Recorder.connect needs of a client."""

    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> str:
        return self.base + path


async def joined(base: str, meeting_id: int, token: str | None = None) -> Recorder:
    """(In the server's namespace.) A python-socketio client in the meeting's room."""
    person = Recorder()
    await person.connect(Url(base), token)
    ack = await person.call("join", {"meeting_id": meeting_id})
    assert ack["ok"], ack
    return person


async def test_a_phone_that_loses_its_network_says_so_and_comes_back_by_itself(tmp_path):
    require_browser_sandbox()
    require_namespaces()
    env = server_env(tmp_path)
    created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    with LinkedNamespaces() as link, NamespaceLoop(link.near) as near:
        server = NamespacedServer(env, link.near, link.NEAR_ADDRESS, tmp_path / "server.log")
        server.launch()
        clerk = newcomer = None
        try:
            await near.run(server.wait_ready())
            base = server.url
            member, meeting, token = await near.run(setup_meeting(base))
            clerk = await near.run(joined(base, meeting["id"], token))
            async with async_playwright() as pw, chromium_in(pw, link.far, SMALL_PHONE) as phone:
                page = await phone.new_page()
                errors: list = []
                page.on("pageerror", lambda e: errors.append(e))
                await page.goto(base + "/i/" + member["invite_url"].rsplit("/i/", 1)[1])
                await page.goto(f"{base}/m/{meeting['code']}")
                await page.locator("#chat-form").wait_for(state="visible", timeout=20_000)
                await page.wait_for_function(f"() => /^\\d+人在线/.test(({PRESENCE})())")
                before = int((await page.evaluate(PRESENCE)).split("人")[0])
                assert await page.evaluate(BANNER_GONE)

                # the phone's network goes
                link.cut()
                cut_at = time.monotonic()
                await page.wait_for_function(BANNER_SHOWN, timeout=15_000)
                shown_after = time.monotonic() - cut_at
                # "N人在线" would be a guess now: not shown
                assert await page.evaluate(PRESENCE) is None

                # a line typed while down waits in the box, and says so
                await page.fill("#chat-input", LINE)
                await page.click("#chat-form button")
                error = page.locator("#chat-error")
                await error.wait_for(state="visible")
                assert "还没有发出" in await error.inner_text()
                assert await page.input_value("#chat-input") == LINE
                # a hand raised while down: told it was not sent
                await page.click("#hand-button")
                await page.wait_for_function(
                    "() => document.getElementById('hand-status').textContent.includes('没有发出')"
                )

                # meanwhile someone else comes in: the count the phone knew is wrong now
                newcomer = await near.run(joined(base, meeting["id"]))
                await asyncio.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))
                assert await page.evaluate(BANNER_SHOWN)

                # the network is back: rejoin by itself, send the line, live counts again
                link.restore()
                await page.wait_for_function(BANNER_GONE, timeout=60_000)
                heard = await near.run(
                    clerk.wait_for("chat:message", lambda m: m.get("text") == LINE, timeout=30)
                )
                assert heard["author"]["name"] == "在外打工的李四"
                await page.wait_for_function(
                    "() => document.getElementById('chat-input').value === ''", timeout=15_000
                )
                assert await page.locator("#chat-error").is_hidden()
                await page.wait_for_function(
                    f"n => ({PRESENCE})() === n + '人在线'", arg=str(before + 1), timeout=15_000
                )
                lines = await page.locator("#chat-list .chat-text").all_inner_texts()
                assert lines.count(LINE) == 1  # sent once, shown once
                # and the room works as before: a hand goes up
                await page.click("#hand-button")
                await page.wait_for_function(
                    "() => document.getElementById('hand-status').textContent.includes('第1位')"
                )
                assert not errors, errors
                print(f"\nbanner shown {shown_after:.1f} s after the link went down")
        finally:
            for person in (clerk, newcomer):
                if person is not None:
                    await near.run(person.close())
            server.stop()
