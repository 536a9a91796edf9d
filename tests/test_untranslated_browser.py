"""No English on the pages a zh-CN phone shows, outside user content and proper names.

Chromium at 360×740 in zh-CN visits the main pages as the clerk, a member and a guest.
The meeting, its agenda, the place, a member's name and a chat line are written in
English on purpose: user content is marked ``translate="no"`` where it is rendered,
and only that keeps it out of the check (tests/support/untranslated.py). A refusal
the server sends over socket.io (a chat line too many) is shown in Chinese.
"""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from .support.browser import Browser, ServerClient, clerk_logs_in
from .support.realtime import Recorder
from .support.untranslated import untranslated_texts

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}


async def village(server) -> dict:
    """A member with a Latin name; a live meeting with an open vote, an ended one: in English."""
    clerk = ServerClient(server)
    post = clerk.clerk_post
    member = await post("/api/members", {"name": "Lily Wang"})
    await post("/api/members", {"name": "王秀英"})
    live = await post(
        "/api/meetings",
        {
            "title": "Spring Assembly",
            "place": "Hall B",
            "allow_guests": True,
            "allow_guest_chat": True,
            "agenda": [{"title": "Road repair", "description": "East road"}],
        },
    )
    await post(f"/api/meetings/{live['id']}/start", {})
    # a vote in English words: its question and options are user content too
    clerk_socket = Recorder()
    headers = await clerk.clerk_headers()
    await clerk_socket.connect(server, headers["Authorization"][len("Bearer ") :])
    try:
        assert (await clerk_socket.call("join", {"meeting_id": live["id"]}))["ok"]
        vote = {"question": "Fix the east road?", "options": ["Yes", "No"]}
        assert (await clerk_socket.call("vote:open", vote))["ok"]
    finally:
        await clerk_socket.close()
    ended = await post(
        "/api/meetings",
        {"title": "Autumn Meeting", "agenda": [{"title": "Budget"}], "allow_guests": True},
    )
    await post(f"/api/meetings/{ended['id']}/start", {})
    await post(f"/api/meetings/{ended['id']}/end", {})
    return {"member": member, "live": live, "ended": ended}


async def look(page, url: str, found: dict, name: str, ready: str | None = None) -> None:
    """Open ``url``, wait until it has settled, and keep what is left in English."""
    await page.goto(url)
    if ready:
        await page.wait_for_selector(ready, timeout=20_000)
    await page.wait_for_load_state("networkidle")
    texts = await untranslated_texts(page)
    if texts:
        found[name] = texts


async def test_no_english_on_the_main_pages_in_chinese_mode(server):
    base = str(server.make_url("")).rstrip("/")
    data = await village(server)
    live, ended, member = data["live"], data["ended"], data["member"]
    found: dict[str, list[str]] = {}
    async with async_playwright() as pw:
        async with Browser(pw) as clerk_phone, Browser(pw) as member_phone:
            stranger = await member_phone.new_page()
            await stranger.set_viewport_size(SMALL_PHONE)
            await look(stranger, f"{base}/", found, "home (nobody signed in)")
            await look(stranger, f"{base}/login", found, "login")
            await look(stranger, f"{base}/m/{live['code']}", found, "watch (guest form)")
            await stranger.fill("#guest-name", "Tom")
            await stranger.click("#guest-form button")
            await stranger.wait_for_selector("#chat-form:not([hidden])", timeout=20_000)
            texts = await untranslated_texts(stranger)
            if texts:
                found["watch (as a guest)"] = texts
            await stranger.context.clear_cookies()

            phone = await member_phone.new_page()
            await phone.set_viewport_size(SMALL_PHONE)
            await phone.goto(member["invite_url"])
            await look(phone, f"{base}/", found, "home (member)")
            watch = f"{base}/m/{live['code']}"
            await look(phone, watch, found, "watch (member)", ".ballot-option")
            # user content in English: a chat line, a raised hand (seen on the host page too)
            await phone.fill("#chat-input", "OK, see you at eight")
            await phone.press("#chat-input", "Enter")
            await phone.wait_for_selector("#chat-list .chat-line", timeout=20_000)
            await phone.click("#hand-button")
            await phone.wait_for_selector("#hand-button[aria-pressed='true']", timeout=20_000)
            texts = await untranslated_texts(phone)
            if texts:
                found["watch (member, after chatting)"] = texts
            await look(phone, f"{base}/meetings/{live['id']}/notice", found, "notice")
            await look(phone, f"{base}/meetings/{ended['id']}/replay", found, "replay")

            clerk = await clerk_phone.new_page()
            await clerk.set_viewport_size(SMALL_PHONE)
            await clerk_logs_in(clerk, base)
            await look(clerk, f"{base}/meetings/new", found, "new meeting")
            await look(clerk, f"{base}/", found, "home (clerk)")
            await look(clerk, f"{base}/members", found, "members")
            await look(clerk, f"{base}/meetings/past", found, "past meetings")
            host = f"{base}/meetings/{live['id']}/host"
            await look(clerk, host, found, "host", "#hand-queue li")
            minutes = f"{base}/api/meetings/{ended['id']}/minutes.html"
            await look(clerk, minutes, found, "minutes")
            await look(clerk, f"{base}/meetings/{ended['id']}/replay", found, "replay (clerk)")
    assert found == {}, "\n".join(f"{name}: {texts}" for name, texts in found.items())


async def test_a_socket_refusal_is_shown_in_chinese(server):
    """Chat lines faster than the allowance: the server's refusal reaches the page in Chinese."""
    base = str(server.make_url("")).rstrip("/")
    data = await village(server)
    async with async_playwright() as pw:
        async with Browser(pw) as member_phone:
            page = await member_phone.new_page()
            await page.set_viewport_size(SMALL_PHONE)
            await page.goto(data["member"]["invite_url"])
            await page.goto(f"{base}/m/{data['live']['code']}")
            await page.wait_for_selector("#chat-input:not([disabled])", timeout=20_000)
            error = page.locator("#chat-error")
            for n in range(12):  # the allowance is 5 lines in 10 s
                await page.fill("#chat-input", f"第{n}句")
                await page.press("#chat-input", "Enter")
                if await error.is_visible():
                    break
                await page.wait_for_function(
                    "() => document.getElementById('chat-input').value === ''"
                    " || !document.getElementById('chat-error').hidden",
                    timeout=20_000,
                )
            await error.wait_for(state="visible", timeout=20_000)
            said = await error.inner_text()
            assert "秒" in said and "最多" in said, said  # the server's words, in Chinese
            left = await untranslated_texts(page)
            assert left == []
