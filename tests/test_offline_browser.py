"""A phone that loses its network is told so, and comes back by itself (issue 14, wall 7;
issue 16, failure 2).

A real link cut, not the browser's offline emulation: the server runs in one network
namespace, Chromium (360×740, zh-CN) in another, joined by a veth pair that the test
takes down for about ten seconds (tests/support/netlink.py). The member must see
"网络已断开，正在重新连接…" at once, the "N人在线" line must not keep showing a count it
no longer knows, a chat line typed while down must reach the room after the rejoin
(never "join a meeting first"), a hand pressed while down must say it was not sent,
and after the link returns the banner goes and the presence line is live again.

While the phone is away the room goes on (python-socketio clients in the server's
namespace): two others chat, another member raises a hand behind the phone's own, and
the clerk opens a vote. Once back, without a reload, the phone shows exactly what it
missed (each chat line once, in order), its hand keeps its place, the vote's card is
there, the meeting's picture plays again (frames decoded; an aiortc publisher in the
server's namespace), and the committee's timeline has no attendance:left/joined pair
for the member: a short drop is not leaving (ATTENDANCE_LEAVE_GRACE).

Runs where network namespaces can be made (root, iproute2): from the loopback-only
namespace of the browser tests it creates two namespaces of its own and deletes them.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from playwright.async_api import async_playwright

from .support.api import PASSWORD, auth, server_env
from .support.browser import require_browser_sandbox
from .support.netlink import (
    LinkedNamespaces,
    NamespacedServer,
    NamespaceLoop,
    chromium_in,
    require_namespaces,
    secure_origin,
    setup_meeting,
)
from .support.peers import Publisher
from .support.processes import Remote, run_cli
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
LINE = "断网时写的一句话"
BEFORE = "断网前的一句"
MISSED = ["一：路灯的事", "二：修桥的事", "三：明天再说"]

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
#: in the phone: the wall clock (ms) of each moment the player decoded more video frames
#: (and no guess from a page slowed by a busy test machine: the picture, not sound only)
FRAMES = """(() => {
  localStorage.setItem('cunhui.linkGuess', 'off');
  window.__decodedAt = [];
  let last = 0;
  setInterval(() => {
    const player = document.getElementById('player');
    const frames = player?.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
    if (frames !== last && frames > 0) window.__decodedAt.push(Date.now());
    if (window.__decodedAt.length > 400) window.__decodedAt.splice(0, 200);
    last = frames;
  }, 100);
})();"""
DECODED_SINCE = "(t) => window.__decodedAt.filter((at) => at >= t).length"
FIRST_DECODED_SINCE = "(t) => window.__decodedAt.find((at) => at >= t) ?? null"
#: what plays: WebRTC's picture (the WHEP session), not the HLS fallback
WEBRTC = "() => document.body.dataset.mode === 'video' && document.body.dataset.state === 'playing'"
QUEUE = "() => [...document.querySelectorAll('#hand-queue .queue-name')].map((n) => n.textContent)"


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


async def member_joined(base: str, meeting_id: int, clerk_token: str, name: str) -> Recorder:
    """(In the server's namespace.) Another member on the roll, signed in by their invite,
    in the meeting's room."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base + "/api/members", json={"name": name}, headers=auth(clerk_token)
        ) as added:
            assert added.status == 201, await added.text()
            invite = (await added.json())["invite"]
        async with http.post(base + "/api/join", json={"invite": invite}) as join:
            assert join.status == 200, await join.text()
            token = (await join.json())["token"]
    return await joined(base, meeting_id, token)


async def publish(
    base: str, meeting_id: int, token: str
) -> tuple[Publisher, aiohttp.ClientSession]:
    """(In the server's namespace.) The hall's camera: a small aiortc WHIP publisher."""
    http = aiohttp.ClientSession()
    publisher = Publisher(width=320, height=240)
    await publisher.publish(Remote(http, base), meeting_id, token)
    return publisher, http


async def attendance(base: str, meeting_id: int, token: str, name: str) -> list[str]:
    """(In the server's namespace.) The committee's timeline: ``name``'s attendance events."""
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base}/api/meetings/{meeting_id}/timeline", headers=auth(token)
        ) as response:
            assert response.status == 200, await response.text()
            events = (await response.json())["events"]
    return [
        e["type"]
        for e in events
        if e["type"].startswith("attendance:") and (e.get("participant") or {}).get("name") == name
    ]


async def test_a_phone_that_loses_its_network_says_so_and_comes_back_by_itself(tmp_path):
    require_browser_sandbox()
    require_namespaces()
    env = server_env(tmp_path)
    created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    with LinkedNamespaces() as link, NamespaceLoop(link.near) as near:
        env["ICE_HOST_ADDRESSES"] = link.NEAR_ADDRESS
        env.pop("ATTENDANCE_LEAVE_GRACE", None)  # the default (60 s): a short drop is not leaving
        server = NamespacedServer(env, link.near, link.NEAR_ADDRESS, tmp_path / "server.log")
        server.launch()
        people: list[Recorder] = []
        camera = None
        try:
            await near.run(server.wait_ready())
            base = server.url
            member, meeting, token = await near.run(setup_meeting(base))
            mid = meeting["id"]
            clerk = await near.run(joined(base, mid, token))
            people.append(clerk)
            wang = await near.run(member_joined(base, mid, token, "王五"))
            people.append(wang)
            zhao = await near.run(member_joined(base, mid, token, "赵六"))
            people.append(zhao)
            camera = await near.run(publish(base, mid, token))
            assert (await near.run(wang.call("hand:raise", {})))["ok"]
            async with (
                async_playwright() as pw,
                chromium_in(pw, link.far, SMALL_PHONE, AUTOPLAY, secure_origin(base)) as phone,
            ):
                await phone.add_init_script(FRAMES)
                page = await phone.new_page()
                errors: list = []
                page.on("pageerror", lambda e: errors.append(e))
                await page.goto(base + "/i/" + member["invite_url"].rsplit("/i/", 1)[1])
                await page.goto(f"{base}/m/{meeting['code']}")
                await page.locator("#chat-form").wait_for(state="visible", timeout=20_000)
                await page.wait_for_function(f"() => /^\\d+人在线/.test(({PRESENCE})())")
                before = int((await page.evaluate(PRESENCE)).split("人")[0])
                assert await page.evaluate(BANNER_GONE)
                # the picture plays (WHEP); the phone's hand goes up behind 王五's
                await page.wait_for_function(WEBRTC, timeout=30_000)
                await page.wait_for_function(f"() => ({DECODED_SINCE})(0) > 5", timeout=30_000)
                await page.click("#hand-button")
                await page.wait_for_function(
                    "() => document.getElementById('hand-status').textContent.includes('第2位')"
                )
                assert (await near.run(clerk.call("chat:send", {"text": BEFORE})))["ok"]
                await page.wait_for_function(
                    "t => [...document.querySelectorAll('#chat-list .chat-text')]"
                    ".some((n) => n.textContent === t)",
                    arg=BEFORE,
                )

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
                # pressing the hand button while down: told it was not sent
                await page.click("#hand-button")
                await page.wait_for_function(
                    "() => document.getElementById('hand-status').textContent.includes('没有发出')"
                )

                # meanwhile the room goes on: chat, a hand behind the phone's, a vote,
                # and someone else comes in (the count the phone knew is wrong now)
                for who, text in zip((clerk, wang, clerk), MISSED, strict=True):
                    assert (await near.run(who.call("chat:send", {"text": text})))["ok"]
                assert (await near.run(zhao.call("hand:raise", {})))["ok"]
                opened = await near.run(
                    clerk.call("vote:open", {"question": "修桥吗？", "options": ["同意", "不同意"]})
                )
                assert opened["ok"], opened
                people.append(await near.run(joined(base, mid)))
                await asyncio.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))
                assert await page.evaluate(BANNER_SHOWN)

                # the network is back: rejoin by itself, send the line, live counts again
                link.restore()
                back_at, back_wall = time.monotonic(), time.time() * 1000
                await page.wait_for_function(BANNER_GONE, timeout=60_000)
                rejoined_after = time.monotonic() - back_at
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
                # exactly what it missed, once each, in order, then its own line
                lines = await page.locator("#chat-list .chat-text").all_inner_texts()
                assert lines[lines.index(BEFORE) :] == [BEFORE, *MISSED, LINE], lines
                # its hand kept its place, 赵六's came in behind it
                assert await page.evaluate(QUEUE) == ["王五", "在外打工的李四", "赵六"]
                assert "第2位" in await page.locator("#hand-status").inner_text()
                # the vote opened while it was away: its card is there
                card = page.locator("#vote-list .vote-item.open")
                await card.wait_for(state="visible", timeout=15_000)
                assert "修桥吗？" in await card.inner_text()
                # and the picture plays again, without a reload
                await page.wait_for_function(
                    f"t => ({DECODED_SINCE})(t) > 5", arg=back_wall, timeout=30_000
                )
                frames_at = await page.evaluate(FIRST_DECODED_SINCE, back_wall)
                assert await page.evaluate(WEBRTC)  # over WebRTC again, not the HLS fallback
                media_after = (frames_at - back_wall) / 1000
                assert page.url.endswith(f"/m/{meeting['code']}")
                # one short drop is not leaving: one join, no leave, on the committee's record
                seen = await near.run(attendance(base, mid, token, "在外打工的李四"))
                assert seen == ["attendance:joined"], seen
                assert not errors, errors
                print(
                    f"\nbanner shown {shown_after:.1f} s after the link went down; "
                    f"room rejoined {rejoined_after:.1f} s and frames decoded {media_after:.1f} s "
                    "after it came back"
                )
        finally:
            for person in people:
                await near.run(person.close())
            if camera is not None:
                await near.run(camera[0].close())
                await near.run(camera[1].close())
            server.stop()
