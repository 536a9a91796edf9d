"""Issue 14, walls 9 and 11 in a real Chromium at 360×740 (zh-CN).

The minutes reflow for a phone (no sideways scrolling, every row readable as a
labelled card) and still print as tables; no visible text below 16 px on the pages
people read on a phone; no console error on the watch page before the recording
starts, nor on the home and minutes pages; the favicon is served; a member's
sign-out asks first.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import pytest
from playwright.async_api import async_playwright

from .support.browser import Browser, ServerClient, clerk_logs_in
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"

#: every visible text below 16 px: [its text, its size, the element's tag.class]
TEXT_TOO_SMALL = """() => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest("script, style, template, noscript")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const style = getComputedStyle(parent);
    if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
    if (parent.closest("[hidden], .visually-hidden, .sr-only")) continue;
    const size = parseFloat(style.fontSize);
    if (size < 16) small.push([text.slice(0, 40), size, `${parent.tagName}.${parent.className}`]);
  }
  return small;
}"""

#: how the minutes' tables are laid out: [table id or index, display, its width, page width]
TABLES = """() => [...document.querySelectorAll("table.minutes-table")].map((table, i) => ({
  i, display: getComputedStyle(table).display,
  width: table.getBoundingClientRect().width, page: document.documentElement.clientWidth,
  cells: [...table.querySelectorAll("tbody td")].map(td => ({
    title: td.classList.contains("minutes-row-title"),
    label: getComputedStyle(td, "::before").content,
    width: td.getBoundingClientRect().width,
    size: parseFloat(getComputedStyle(td).fontSize),
  })),
}))"""


async def _setup(server) -> dict:
    """A member; an ended meeting with an agenda, a chat, a floor turn and a closed vote
    (its minutes have every table); a live meeting with a chat line."""
    clerk = ServerClient(server)
    headers = await clerk.clerk_headers()
    token = headers["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:

        async def post(path: str, body: dict, auth_headers=headers) -> dict:
            async with session.post(path, json=body, headers=auth_headers) as response:
                assert response.status in (200, 201, 202), await response.text()
                return await response.json()

        member = await post("/api/members", {"name": "王秀英"})
        other = await post("/api/members", {"name": "欧阳建国"})
        ended = await post(
            "/api/meetings",
            {
                "title": "关于修缮村道和安装路灯的村民会议",
                "allow_guests": True,
                "place": "村委会议室",
                "agenda": [
                    {"title": "村道修缮方案（第一期，长约一点二公里）", "description": "说明"},
                    {"title": "路灯安装"},
                ],
            },
        )
        await post(f"/api/meetings/{ended['id']}/start", {})
        joined = await post("/api/join", {"invite": other["invite"]}, {})
        session.cookie_jar.clear()
        host, speaker = Recorder(), Recorder()
        try:
            await host.connect(server, token)
            await speaker.connect(server, joined["token"])
            for person in (host, speaker):
                assert (await person.call("join", {"meeting_id": ended["id"]}))["ok"]
            item = ended["agenda"][0]["id"]
            assert (await host.call("agenda:goto", {"item_id": item}))["ok"]
            await speaker.call("chat:send", {"text": "我同意修路"})
            await speaker.call("hand:raise", {})
            granted = await host.call(
                "floor:grant", {"participant_id": joined["participant"]["id"]}
            )
            assert granted["ok"], granted
            assert (await host.call("floor:revoke", {}))["ok"]
            opened = await host.call(
                "vote:open",
                {"item_id": item, "question": "同意第一期村道修缮方案吗？", "secret": False},
            )
            assert opened["ok"], opened
            cast = await speaker.call("vote:cast", {"vote_id": opened["vote_id"], "choice": "同意"})
            assert cast["ok"], cast
            assert (await host.call("vote:close", {"vote_id": opened["vote_id"]}))["ok"]
        finally:
            await speaker.close()
            await host.close()
        await post(f"/api/meetings/{ended['id']}/end", {})

        live = await post(
            "/api/meetings", {"title": "村民大会", "allow_guests": True, "agenda": []}
        )
        await post(f"/api/meetings/{live['id']}/start", {})
        chatter = Recorder()
        try:
            await chatter.connect(server, joined["token"])
            assert (await chatter.call("join", {"meeting_id": live["id"]}))["ok"]
            said = await chatter.call("chat:send", {"text": "大家好，我在广州看直播"})
            assert said["ok"], said
        finally:
            await chatter.close()
    return {"member": member, "ended": ended, "live": live}


@asynccontextmanager
async def phone():
    """A fresh Chromium at 360×740 with its console errors collected: (context, errors)."""
    async with async_playwright() as pw:
        async with Browser(pw) as context:
            errors: list[str] = []

            def watch(page) -> None:
                page.on(
                    "console",
                    lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
                page.on(
                    "response",
                    lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
                )

            context.on("page", watch)
            yield context, errors


async def _open(context, url: str):
    page = await context.new_page()
    await page.set_viewport_size(SMALL_PHONE)
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    return page


async def _readable(page) -> list:
    """The page's visible text below 16 px (after checking that the check sees some)."""
    planted = await page.evaluate(
        """() => { const probe = document.createElement("span");
        probe.style.fontSize = "12px"; probe.textContent = "探针";
        document.body.append(probe); return probe.getBoundingClientRect().width; }"""
    )
    small = await page.evaluate(TEXT_TOO_SMALL)
    assert planted and ["探针", 12, "SPAN."] in small  # the check itself works
    await page.evaluate("() => document.body.lastElementChild.remove()")
    return [entry for entry in small if entry[0] != "探针"]


async def test_pages_have_no_small_text_and_no_console_errors(server):
    base = str(server.make_url("")).rstrip("/")
    data = await _setup(server)
    code, meeting_id = data["live"]["code"], data["live"]["id"]
    ended_id = data["ended"]["id"]
    async with phone() as (context, errors):
        problems = {}
        page = await _open(context, f"{base}/")
        problems["/ (anyone)"] = await _readable(page)

        # the member's card QR lands straight on the meeting that is live now
        page = await _open(context, data["member"]["invite_url"])
        assert page.url == f"{base}/m/{code}"
        # before the recording starts: the chat's line, its name and time are readable
        await page.locator("#chat-list li").first.wait_for(timeout=15_000)
        assert "大家好" in await page.inner_text("#chat-list")
        await page.wait_for_timeout(1500)  # presence, recording status
        problems["/m/ (member)"] = await _readable(page)
        assert await page.evaluate(NO_SIDEWAYS_SCROLL)

        for path in ("/", f"/api/meetings/{ended_id}/minutes.html", f"/meetings/{ended_id}/replay"):
            page = await _open(context, f"{base}{path}")
            await page.wait_for_timeout(1000)
            problems[f"{path} (member)"] = await _readable(page)
            assert await page.evaluate(NO_SIDEWAYS_SCROLL), path

        page = await context.new_page()
        await page.set_viewport_size(SMALL_PHONE)
        await clerk_logs_in(page, base, f"/meetings/{meeting_id}/host")
        for path in (
            f"/meetings/{meeting_id}/host",
            "/members",
            f"/meetings/{meeting_id}/notice",
            "/",
        ):
            page = await _open(context, f"{base}{path}")
            await page.wait_for_timeout(1000)
            problems[f"{path} (clerk)"] = await _readable(page)
        assert {k: v for k, v in problems.items() if v} == {}
        assert errors == []

        # the favicon the pages name is there
        icon = await page.evaluate("() => document.querySelector('link[rel=icon]').href")
        assert (await page.request.get(icon)).status == 200


async def test_minutes_reflow_on_a_phone_and_print_as_tables(server):
    base = str(server.make_url("")).rstrip("/")
    data = await _setup(server)
    ended_id = data["ended"]["id"]
    async with phone() as (context, errors):
        page = await context.new_page()
        await page.set_viewport_size(SMALL_PHONE)
        await clerk_logs_in(page, base, f"/api/meetings/{ended_id}/minutes.html")
        assert await page.evaluate(NO_SIDEWAYS_SCROLL)
        tables = await page.evaluate(TABLES)
        assert len(tables) == 4, tables  # quorum, agenda, floor, tally
        for table in tables:
            assert table["display"] == "block" and table["width"] <= table["page"], table
            for cell in table["cells"]:
                # each cell a readable line: its column's name before it, no 1-character columns
                assert cell["title"] or cell["label"] not in ("none", "normal", ""), table
                assert cell["width"] > 200 and cell["size"] >= 16, table
        assert await _readable(page) == []
        floor = page.locator("#minutes-floor tbody tr").first
        assert "欧阳建国" in await floor.inner_text()
        assert await floor.evaluate("row => row.getBoundingClientRect().right") <= 360

        await page.emulate_media(media="print")
        printed = await page.evaluate(TABLES)
        assert [t["display"] for t in printed] == ["table"] * 4
        header = await page.evaluate(
            "() => getComputedStyle(document.querySelector('.minutes-table thead')).display"
        )
        assert header == "table-header-group"
        assert errors == []


async def test_a_member_is_asked_before_logging_out(server):
    data = await _setup(server)
    async with phone() as (context, errors):
        page = await _open(context, data["member"]["invite_url"])
        assert await page.locator("header #logout-button").count() == 0  # not by the name
        button = page.locator("#logout-button")
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44
        # readable on the light footer (the header's button is white on green)
        assert await button.evaluate("b => getComputedStyle(b).color") != "rgb(255, 255, 255)"
        await button.click()
        dialog = page.locator("#logout-dialog")
        await dialog.wait_for(state="visible")
        for choice in ("#logout-cancel", "#logout-confirm"):
            box = await page.locator(choice).bounding_box()
            assert box["width"] >= 44 and box["height"] >= 44, choice
        assert "重新扫描成员卡或输入PIN码" in await dialog.inner_text()
        await page.click("#logout-cancel")
        await dialog.wait_for(state="hidden")
        await page.reload()
        assert (await page.text_content(".user-name")).strip() == "王秀英"

        await page.locator("#logout-button").click()
        await page.click("#logout-confirm")
        await page.locator("#login-link").wait_for(timeout=10_000)
        assert await page.locator(".user-name").count() == 0
        assert errors == []


async def test_times_are_on_the_village_clock_whatever_the_phone_says(server):
    """A phone set to New York (19:30 on 30 April) still reads 1 May, 07:30: the village's."""
    clerk = ServerClient(server)
    meeting = await clerk.post_json(
        "/api/meetings",
        json={"title": "早会", "allow_guests": True, "starts_at": "2030-04-30T23:30:00+00:00"},
        headers=await clerk.clerk_headers(),
    )
    base = str(server.make_url("")).rstrip("/")
    async with phone() as (context, errors):
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
        assert await page.evaluate("() => new Date(Date.UTC(2030, 3, 30, 23, 30)).getDate()") == 30
        await page.goto(f"{base}/meetings/{meeting['id']}/notice")
        shown = await page.locator("time[data-format='datetime']").first.inner_text()
        assert "5月1日" in shown and "07:30" in shown, shown
        assert errors == []
