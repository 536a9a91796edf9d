"""A member's phone says who is present when a vote opens, and why it failed when it closes.

Chromium at 360×740 in zh-CN, in the loopback-only namespace like the other browser
tests (issue 14, wall 4). The member signs in with the code and PIN from their card;
the committee and a second member act over socket.io.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import async_playwright

from .support.api import PASSWORD, auth
from .support.browser import Browser
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}

#: text of the vote card below 16 px, or wider than the screen
TOO_SMALL_OR_WIDE = """selector => [...document.querySelectorAll(selector)]
  .filter(node => node.offsetParent !== null)
  .map(node => [node.textContent, parseFloat(getComputedStyle(node).fontSize),
                node.getBoundingClientRect().right])
  .filter(([, size, right]) => size < 16 || right > window.innerWidth)"""

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


async def lines(page, selector: str) -> list[str]:
    return [text.strip() for text in await page.locator(selector).all_text_contents()]


async def test_the_phone_shows_present_and_eligible_at_open_and_why_after_close(server):
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        login = await session.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        clerk_token = (await login.json())["token"]
        session.cookie_jar.clear()

        async def post(path: str, body: dict, token: str | None = clerk_token) -> dict:
            headers = auth(token) if token else {}
            async with session.post(path, json=body, headers=headers) as response:
                assert response.status in (200, 201), await response.text()
                return await response.json()

        wang = await post("/api/members", {"name": "王秀英"})
        li = await post("/api/members", {"name": "李四"})
        meeting = await post("/api/meetings", {"title": "村民会议", "agenda": []})
        await post(f"/api/meetings/{meeting['id']}/start", {})
        li_token = (await post("/api/join", {"invite": li["invite"]}, token=None))["token"]
        session.cookie_jar.clear()

    committee, second = Recorder(), Recorder()
    await committee.connect(server, clerk_token)
    assert (await committee.call("join", {"meeting_id": meeting["id"]}))["ok"]
    await second.connect(server, li_token)
    assert (await second.call("join", {"meeting_id": meeting["id"]}))["ok"]
    try:
        async with async_playwright() as pw:
            async with Browser(pw) as phone:
                page = await phone.new_page()
                await page.set_viewport_size(SMALL_PHONE)
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                # the member's card: the meeting code and the PIN
                await page.goto(f"{base}/")
                await page.fill("#meeting-code", meeting["code"])
                await page.fill("#meeting-pin", wang["pin"])
                await page.click("#code-button")
                await page.wait_for_url(f"{base}/m/{meeting['code']}")
                await page.locator("#hand-button").wait_for(state="visible", timeout=15_000)

                opened = await committee.call(
                    "vote:open", {"question": "修村道吗？", "rule": "villagers_assembly"}
                )
                assert opened["ok"], opened
                vote_id = opened["vote_id"]

                # at once, on the phone: who is present, who may vote, what it takes
                card = page.locator(".vote-rule-words")
                await card.wait_for(state="visible", timeout=15_000)
                assert await lines(page, ".vote-rule-line") == [
                    "到会 2 人 · 应投 2 人",
                    "有效条件：到会人数超过应投 2 人的半数，即至少 2 人。",
                    "通过条件：同意票超过到会 2 人的半数，即至少 2 票。",
                    "表决规则：村民会议（《中华人民共和国村民委员会组织法》第二十二条）",
                ]
                assert await page.evaluate(TOO_SMALL_OR_WIDE, ".vote-rule-line") == []
                assert await page.evaluate(NO_SIDEWAYS_SCROLL)

                await page.locator(".ballot-option", has_text="同意").click()
                await page.locator(".ballot-done").wait_for(state="visible", timeout=15_000)
                cast = await second.call("vote:cast", {"vote_id": vote_id, "choice": "反对"})
                assert cast["ok"], cast
                closed = await committee.call("vote:close", {"vote_id": vote_id})
                assert closed["ok"] and closed["passed"] is False, closed

                # the result says why, in the tally's numbers
                await page.locator(".vote-explanation").wait_for(state="visible", timeout=15_000)
                assert (await page.text_content(".vote-verdict")).strip() == "未通过"
                assert await lines(page, ".vote-explanation-line") == [
                    "未通过：同意 1 票，需要超过到会 2 人的半数，即至少 2 票。",
                    "达到法定人数：到会 2 人，需要超过应投 2 人的半数，即至少 2 人。",
                    "表决规则：村民会议（《中华人民共和国村民委员会组织法》第二十二条）",
                ]
                assert await page.evaluate(TOO_SMALL_OR_WIDE, ".vote-explanation-line") == []
                assert await page.evaluate(NO_SIDEWAYS_SCROLL)

                # a reload: the stored result explains itself the same way
                await page.reload()
                await page.locator(".vote-explanation").wait_for(state="visible", timeout=15_000)
                assert (await lines(page, ".vote-explanation-line"))[0].startswith("未通过：")

                # and the replay's timeline shows the same words at the vote's moment
                await page.goto(f"{base}/meetings/{meeting['id']}/replay")
                replayed = page.locator(".tl-vote-result .vote-explanation-line")
                await replayed.first.wait_for(state="visible", timeout=15_000)
                assert await lines(page, ".tl-vote-result .vote-explanation-line") == [
                    "未通过：同意 1 票，需要超过到会 2 人的半数，即至少 2 票。",
                    "达到法定人数：到会 2 人，需要超过应投 2 人的半数，即至少 2 人。",
                    "表决规则：村民会议（《中华人民共和国村民委员会组织法》第二十二条）",
                ]
                opening = await lines(page, ".vote-rule-line")
                assert opening[0] == "到会 2 人 · 应投 2 人"
                assert await page.evaluate(NO_SIDEWAYS_SCROLL)
    finally:
        await asyncio.gather(committee.close(), second.close(), return_exceptions=True)
