"""A member with only the printed card (meeting code + PIN) signs in on a phone.

Chromium at 360×740 in zh-CN, inside the loopback-only namespace like the other
browser tests: the home page's code + PIN box, the watch page's PIN form (also on a
members-only meeting, where a guest would hit a dead end) and a wrong PIN's message.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from playwright.async_api import async_playwright

from .support.browser import Browser, ServerClient

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}

#: every visible control of the PIN forms: at least 44×44 px, text at least 16 px
CONTROLS_FIT = """ids => ids.map(id => {
  const node = document.getElementById(id);
  const box = node.getBoundingClientRect();
  return [id, box.width, box.height, parseFloat(getComputedStyle(node).fontSize)];
}).filter(([, w, h, size]) => w < 44 || h < 44 || size < 16)"""

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


async def roll_and_meetings(server) -> tuple[dict, dict, dict]:
    """A member (with their PIN), a live meeting open to guests, a members-only one."""
    post = ServerClient(server).clerk_post
    member = await post("/api/members", {"name": "王秀英"})
    open_meeting = await post(
        "/api/meetings", {"title": "村民大会", "allow_guests": True, "agenda": []}
    )
    await post(f"/api/meetings/{open_meeting['id']}/start", {})
    members_only = await post(
        "/api/meetings", {"title": "村民代表会议", "allow_guests": False, "agenda": []}
    )
    assert member["pin"]
    return member, open_meeting, members_only


@asynccontextmanager
async def small_phone(base: str, path: str):
    """A fresh Chromium at 360×740 showing `path`: its page."""
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            page = await phone.new_page()
            await page.set_viewport_size(SMALL_PHONE)
            await page.goto(f"{base}{path}")
            yield page


async def assert_fits_a_small_phone(page, *control_ids: str) -> None:
    assert await page.evaluate(NO_SIDEWAYS_SCROLL)
    assert await page.evaluate(CONTROLS_FIT, list(control_ids)) == []


async def test_member_types_code_and_pin_on_the_home_page(server):
    base = str(server.make_url("")).rstrip("/")
    member, meeting, _ = await roll_and_meetings(server)
    code = meeting["code"]
    async with small_phone(base, "/") as page:
        await assert_fits_a_small_phone(page, "meeting-code", "meeting-pin", "code-button")
        assert await page.get_attribute("#meeting-pin", "inputmode") == "numeric"
        assert await page.get_attribute("#meeting-pin", "autocomplete") == "off"

        # typed as on the card, with spaces
        await page.fill("#meeting-code", f"{code[:3]} {code[3:6]} {code[6:]}")
        await page.fill("#meeting-pin", member["pin"])
        await page.click("#code-button")
        await page.wait_for_url(f"{base}/m/{code}")

        # themselves: their name in the header, no PIN form, a hand to raise
        assert (await page.text_content(".user-name")).strip() == "王秀英"
        assert await page.locator("#pin-form").count() == 0
        await page.locator("#hand-button").wait_for(state="visible", timeout=15_000)

        # and the phone stays signed in, as after an invite link
        await page.goto(f"{base}/")
        assert await page.locator("#member-greeting").count() == 1


async def test_pin_form_opens_a_members_only_meeting(server):
    base = str(server.make_url("")).rstrip("/")
    member, _, meeting = await roll_and_meetings(server)
    wrong = "000000" if member["pin"] != "000000" else "111111"
    async with small_phone(base, f"/m/{meeting['code']}") as page:
        # the dead end of a guest, now with a way in
        assert await page.locator("#forbidden-notice").is_visible()
        assert await page.locator("#pin-form").is_visible()
        assert "用会议号和PIN码登录" in await page.text_content("#pin-form")
        await assert_fits_a_small_phone(page, "pin-input", "pin-button")

        await page.fill("#pin-input", wrong)
        await page.click("#pin-button")
        error = page.locator("#pin-error")
        await error.wait_for(state="visible")
        assert (await error.text_content()).strip() == "PIN码不对，还可以再试 4 次。"

        await page.fill("#pin-input", member["pin"])
        await page.click("#pin-button")
        await page.locator("#player-box").wait_for(state="attached", timeout=10_000)
        assert await page.locator("#forbidden-notice").count() == 0
        assert await page.locator("#pin-form").count() == 0
        assert (await page.text_content(".user-name")).strip() == "王秀英"


async def test_home_page_says_what_went_wrong(server):
    """An unknown code, a wrong PIN with the tries left, then the lockout with when."""
    base = str(server.make_url("")).rstrip("/")
    member, meeting, _ = await roll_and_meetings(server)
    unknown = "123456789" if meeting["code"] != "123456789" else "987654321"
    async with small_phone(base, "/") as page:
        await page.fill("#meeting-code", unknown)
        await page.fill("#meeting-pin", member["pin"])
        await page.click("#code-button")
        error = page.locator("#code-error")
        await error.wait_for(state="visible")
        assert "没有这个会议号" in await error.text_content()
        assert page.url == f"{base}/"

        wrong = "000000" if member["pin"] != "000000" else "111111"
        await page.fill("#meeting-code", meeting["code"])
        said = []
        for _ in range(6):
            await page.fill("#meeting-pin", wrong)
            await page.click("#code-button")
            await error.wait_for(state="visible")
            said.append((await error.text_content()).strip())
        assert said[:4] == [f"PIN码不对，还可以再试 {n} 次。" for n in (4, 3, 2, 1)]
        assert said[4] == "PIN码不对，已没有尝试机会，请10分钟后再试。"
        assert said[5].startswith("输错次数太多，请 ") and said[5].endswith(" 分钟后再试。")
        assert page.url == f"{base}/"
