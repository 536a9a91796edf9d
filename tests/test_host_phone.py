"""The clerk runs the meeting from a 360 px phone (issue 14, wall 10).

Chromium at 360×740 in zh-CN, inside the loopback-only namespace like the other
browser tests. A new raised hand must be seen (the count stays at the top of the
screen wherever the page is scrolled) and felt (vibration and a beep, which the
clerk can turn off); every control of the committee's pages is a 44×44 px target and
nothing widens the page; deleting a member or a chat line asks first.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import async_playwright

from .support.api import PASSWORD
from .support.browser import Browser, ServerClient
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}

#: counts the phone's vibrations and beeps (oscillators started)
COUNT_SIGNALS = """
window.__vibrations = 0;
window.__beeps = 0;
Object.defineProperty(Navigator.prototype, "vibrate", {
  configurable: true,
  value: function () { window.__vibrations += 1; return true; },
});
const realStart = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__beeps += 1;
  return realStart.apply(this, args);
};
"""

#: every visible control too small to tap: [what, width, height]. A checkbox or radio
#: is tapped through its label; a visually hidden input (the CSV file) through its
#: label.button.
TOO_SMALL = """() => {
  const seen = (node) => {
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    return box.width > 1 && box.height > 1 && style.visibility !== "hidden";
  };
  const target = (node) => {
    if (node.matches("input[type=checkbox], input[type=radio]")) {
      const byId = node.id && document.querySelector(`label[for="${node.id}"]`);
      return byId || node.closest("label");
    }
    return node;
  };
  const small = [];
  const controls = document.querySelectorAll(
    "button, a[href], input:not([type=hidden]), select, textarea, summary, label.button");
  for (const node of controls) {
    if (!seen(node)) continue;
    const tapped = target(node);
    if (!tapped) { small.push([node.outerHTML.slice(0, 80), 0, 0]); continue; }
    const box = tapped.getBoundingClientRect();
    if (box.width < 44 || box.height < 44) {
      small.push([tapped.outerHTML.slice(0, 80), Math.round(box.width), Math.round(box.height)]);
    }
  }
  return small;
}"""

#: what sticks out to the right of a 360 px screen (or the page scrolls sideways)
OVERFLOW = """() => {
  const out = [];
  if (document.documentElement.scrollWidth > window.innerWidth) {
    out.push(["page", document.documentElement.scrollWidth]);
  }
  for (const node of document.querySelectorAll("button, a, label, input, select, .button")) {
    const box = node.getBoundingClientRect();
    if (box.width > 0 && box.right > window.innerWidth + 0.5) {
      out.push([node.outerHTML.slice(0, 80), Math.round(box.right)]);
    }
  }
  return out;
}"""

#: the hand count's box is inside the screen
COUNT_ON_SCREEN = """() => {
  const box = document.getElementById("hand-alert").getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""


class Clerk:
    """The committee's calls over HTTP, and the roll and meeting of these tests."""

    def __init__(self, server) -> None:
        self.server = server
        self.api = ServerClient(server)
        self.headers: dict = {}

    async def post(self, path: str, body: dict) -> dict:
        if not self.headers:
            self.headers = await self.api.clerk_headers()
        response = await self.api.post(path, json=body, headers=self.headers)
        assert response.status in (200, 201), response.status
        return await response.json()

    async def member(self, name: str) -> tuple[dict, Recorder]:
        """A member on the roll, and their phone's socket.io client (not joined yet)."""
        added = await self.post("/api/members", {"name": name})
        joined = await self.api.post_json("/api/join", json={"invite": added["invite"]})
        phone = Recorder()
        await phone.connect(self.server, joined["token"])
        return added, phone


@asynccontextmanager
async def clerk_phone(base: str, path: str, *, lang_en: bool = False):
    """Chromium at 360×740, the clerk logged in, showing `path`: its page."""
    async with async_playwright() as pw:
        async with Browser(pw) as browser:
            page = await browser.new_page()
            await page.set_viewport_size(SMALL_PHONE)
            await page.add_init_script(COUNT_SIGNALS)
            if lang_en:
                await page.goto(f"{base}/lang/en?next=/")
            await page.goto(f"{base}/login?next={path}")
            await page.fill("#username", "clerk")
            await page.fill("#password", PASSWORD)
            await page.click("#login-button")
            await page.wait_for_url(f"{base}{path}")
            yield page


async def live_meeting_with_agenda(clerk: Clerk) -> dict:
    meeting = await clerk.post(
        "/api/meetings",
        {
            "title": "村民会议：关于村道修缮和集体经济项目分红方案的讨论",
            "allow_guests": True,
            "agenda": [{"title": "村道修缮"}, {"title": "分红方案"}],
        },
    )
    await clerk.post(f"/api/meetings/{meeting['id']}/start", {})
    return meeting


async def raise_hand(phone: Recorder, meeting: dict) -> None:
    assert (await phone.call("join", {"meeting_id": meeting["id"]}))["ok"]
    assert (await phone.call("hand:raise", {}))["ok"]


async def test_a_new_hand_shows_at_the_top_and_signals_unless_turned_off(server):
    base = str(server.make_url("")).rstrip("/")
    clerk = Clerk(server)
    meeting = await live_meeting_with_agenda(clerk)
    _, wang = await clerk.member("王秀英")
    _, li = await clerk.member("李四")
    host = f"/meetings/{meeting['id']}/host"
    try:
        async with clerk_phone(base, host) as page:
            count = page.locator("#hand-alert")
            await count.wait_for(state="visible", timeout=20_000)
            assert await count.get_attribute("data-count") == "0"
            assert await page.locator("#hand-alert-sound").get_attribute("aria-pressed") == "true"
            # the clerk has scrolled to the agenda at the bottom: the queue is far above
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            assert await page.evaluate("window.scrollY") > 1000
            assert await page.evaluate(
                "() => document.getElementById('hand-queue').getBoundingClientRect().bottom < 0"
            )  # the queue is far above

            await raise_hand(wang, meeting)
            await page.wait_for_function(
                "() => document.getElementById('hand-alert').dataset.count === '1'",
                timeout=20_000,
            )
            assert "1人举手" in await count.inner_text()
            assert await page.evaluate(COUNT_ON_SCREEN)
            await page.wait_for_function("() => window.__vibrations >= 1", timeout=10_000)
            await page.wait_for_function("() => window.__beeps >= 1", timeout=10_000)

            # tapping the count goes to the queue, with the give-the-floor button
            await count.click()
            await page.wait_for_function(
                "() => { const b = document.querySelector('#hand-queue .grant');"
                " const r = b.getBoundingClientRect();"
                " return r.top >= 0 && r.bottom <= window.innerHeight; }",
                timeout=10_000,
            )
            assert await page.locator("#hand-queue .queue-name").inner_text() == "王秀英"

            # the clerk turns the signal off; this phone remembers it
            await page.click("#hand-alert-sound")
            assert await page.locator("#hand-alert-sound").get_attribute("aria-pressed") == "false"
            assert "关" in await page.locator("#hand-alert-sound").inner_text()
            await page.reload()
            await page.wait_for_function(
                "() => document.getElementById('hand-alert').dataset.count === '1'",
                timeout=20_000,
            )
            assert await page.locator("#hand-alert-sound").get_attribute("aria-pressed") == "false"
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")

            await raise_hand(li, meeting)
            await page.wait_for_function(
                "() => document.getElementById('hand-alert').dataset.count === '2'",
                timeout=20_000,
            )
            assert "2人举手" in await count.inner_text()
            assert await page.evaluate(COUNT_ON_SCREEN)
            await asyncio.sleep(1.0)  # a signal would have come with the count
            assert await page.evaluate("[window.__vibrations, window.__beeps]") == [0, 0]
    finally:
        await asyncio.gather(wang.close(), li.close(), return_exceptions=True)


async def assert_fits(page, what: str) -> None:
    assert await page.evaluate(TOO_SMALL) == [], f"{what}: controls smaller than 44×44 px"
    assert await page.evaluate(OVERFLOW) == [], f"{what}: wider than the screen"


async def test_the_committees_pages_fit_a_small_phone(server):
    """Host page (live with a hand, a chat line and an open vote; scheduled), roll, new and
    edit meeting, past meetings: in Chinese and in English (longer labels), every control
    is a 44×44 px target and nothing is wider than 360 px."""
    base = str(server.make_url("")).rstrip("/")
    clerk = Clerk(server)
    meeting = await live_meeting_with_agenda(clerk)
    _, wang = await clerk.member("王秀英")
    chair = Recorder()
    try:
        await raise_hand(wang, meeting)
        assert (await wang.call("chat:send", {"text": "我想问一下修路的钱从哪里来"}))["ok"]
        # a vote open, so its hall counts, roll call and close button are on the page
        await chair.connect(server, clerk.headers["Authorization"].removeprefix("Bearer "))
        assert (await chair.call("join", {"meeting_id": meeting["id"]}))["ok"]
        opened = await chair.call("vote:open", {"question": "同意按方案修缮村道吗？"})
        assert opened["ok"], opened
        scheduled = await clerk.post("/api/meetings", {"title": "下月村民代表会议"})
        ended = await clerk.post("/api/meetings", {"title": "上月村民会议", "allow_guests": True})
        await clerk.post(f"/api/meetings/{ended['id']}/start", {})
        await clerk.post(f"/api/meetings/{ended['id']}/end", {})
        for lang_en in (False, True):
            host = f"/meetings/{meeting['id']}/host"
            async with clerk_phone(base, host, lang_en=lang_en) as page:
                await page.locator("#hand-queue .grant").wait_for(timeout=20_000)
                await page.locator(".chat-delete").first.wait_for(timeout=20_000)
                await page.locator(".close-vote").wait_for(timeout=20_000)
                # every folded part open, so their controls are measured too
                await page.evaluate(
                    "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
                )
                # the roll's checkboxes (members present in the hall) are loaded
                await page.locator("#room-panel input[type=checkbox]").first.wait_for(
                    timeout=20_000
                )
                await assert_fits(page, f"host page ({'en' if lang_en else 'zh'})")

                for path in (
                    f"/meetings/{scheduled['id']}/host",
                    "/members",
                    "/meetings/new",
                    "/meetings/past",
                ):
                    await page.goto(f"{base}{path}")
                    await assert_fits(page, path)
                assert await page.locator(".replay-link").count() == 1  # a past meeting listed
                await page.goto(f"{base}/meetings/{meeting['id']}/edit")
                await assert_fits(page, "edit meeting")
    finally:
        await asyncio.gather(wang.close(), chair.close(), return_exceptions=True)


async def test_deleting_asks_first_and_stands_apart(server):
    """删除 on the roll is away from 重新邀请 and asks, naming the member; so do deleting
    a chat line on the host page and an agenda row with text on the new meeting form."""
    base = str(server.make_url("")).rstrip("/")
    clerk = Clerk(server)
    meeting = await live_meeting_with_agenda(clerk)
    _, wang = await clerk.member("王秀英")
    try:
        assert (await wang.call("join", {"meeting_id": meeting["id"]}))["ok"]
        assert (await wang.call("chat:send", {"text": "修路的钱从哪里来"}))["ok"]
        async with clerk_phone(base, "/members") as page:
            row = page.locator("#roll-body tr", has_text="王秀英")
            reissue = await row.locator("button.reissue").bounding_box()
            remove = await row.locator("button.remove").bounding_box()
            apart_sideways = remove["x"] - (reissue["x"] + reissue["width"]) >= 24
            apart_downwards = remove["y"] >= reissue["y"] + reissue["height"] + 8
            assert apart_sideways or apart_downwards, (reissue, remove)

            asked = []

            async def answer(dialog, accept: bool) -> None:
                asked.append(dialog.message)
                await (dialog.accept() if accept else dialog.dismiss())

            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
            await row.locator("button.remove").click()
            await asyncio.sleep(0.5)
            assert (
                asked and asked[0] == "删除成员 王秀英？其个人链接和PIN码将失效。此操作不能撤销。"
            )
            assert await row.count() == 1
            roll = await clerk.api.get_json("/api/members")
            assert [m["name"] for m in roll["members"]] == ["王秀英"]

            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
            await row.locator("button.remove").click()
            await page.wait_for_function(
                "() => !document.querySelector('#roll-body tr')", timeout=10_000
            )
            assert (await clerk.api.get_json("/api/members"))["members"] == []

            # the chat line on the host page
            await page.goto(f"{base}/meetings/{meeting['id']}/host")
            line = page.locator(".chat-line", has_text="修路的钱从哪里来")
            await line.wait_for(timeout=20_000)
            asked.clear()
            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
            await line.locator(".chat-delete").click()
            await asyncio.sleep(1.0)
            assert asked and "王秀英" in asked[0] and "不能撤销" in asked[0], asked
            assert await line.count() == 1
            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
            await line.locator(".chat-delete").click()
            await line.wait_for(state="detached", timeout=10_000)

            # an agenda row with something typed in it, on the new meeting form
            await page.goto(f"{base}/meetings/new")
            await page.click("#add-agenda-item")
            await page.locator(".agenda-title").nth(1).fill("分红方案")
            asked.clear()
            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
            await page.locator(".remove-row").nth(1).click()
            await asyncio.sleep(0.5)
            assert asked == ["删除议程“分红方案”？"]
            assert await page.locator(".agenda-row").count() == 2
            page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
            await page.locator(".remove-row").nth(1).click()
            await page.wait_for_function(
                "() => document.querySelectorAll('.agenda-row').length === 1"
            )
    finally:
        await wang.close()
