"""The clerk checks a member in by scanning the printed card with the phone's camera.

Chromium at 360×740 in zh-CN, inside the loopback-only namespace like the other browser
tests. The camera is Chromium's fake capture device fed from a video file: the member
card's real QR code (segno, as the card page draws it) filling most of a 480×480 frame.
The host page's 扫码签到 opens the rear camera, the decoder (qr-scanner, from npm) reads
the card, and the server ticks the member present in the hall: the clerk sees the name
confirmed and the count that votes use go up, and a member's phone sees it too.
"""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import AsyncExitStack

import pytest
import segno
from playwright.async_api import async_playwright

from .support.browser import Browser, ServerClient, clerk_logs_in

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}
SLOW = 30_000  # ms: a busy 2-core machine decodes video slowly
#: what the page asks getUserMedia for (the fake device has no facing: it answers anyway)
ASKED_FOR = """(() => {
  window.cameraAskedFor = [];
  const devices = navigator.mediaDevices;
  const ask = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => {
    window.cameraAskedFor.push(constraints);
    return ask(constraints);
  };
})()"""


#: the card's QR code at 400×400 px, sharp, in the middle of a white 480×480 frame
FRAME = "scale=400:400:flags=neighbor,pad=480:480:(ow-iw)/2:(oh-ih)/2:white,format=yuv420p"


def card_video(url: str, folder) -> str:
    """A Y4M video of the card's QR code (about 400 px) in a 480×480 white frame."""
    qr = segno.make(url, error="m")
    modules = qr.symbol_size(border=4)[0]
    png = folder / "card.png"
    qr.save(str(png), kind="png", scale=max(1, 400 // modules), border=4)
    y4m = folder / "card.y4m"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(png),
            "-vf", FRAME,
            "-r", "10", "-t", "2", "-f", "yuv4mpegpipe", str(y4m),
        ],
        check=True,
    )  # fmt: skip
    return str(y4m)


async def roll_and_meeting(server) -> tuple[dict, dict, dict]:
    """王秀英 (her card is scanned), 李四 (watching on his phone), a live meeting."""
    post = ServerClient(server).clerk_post
    wang = await post("/api/members", {"name": "王秀英"})
    li = await post("/api/members", {"name": "李四"})
    meeting = await post("/api/meetings", {"title": "村民大会", "agenda": []})
    await post(f"/api/meetings/{meeting['id']}/start", {})
    return wang, li, meeting


async def test_the_clerk_scans_a_member_card_and_she_is_checked_in(server, tmp_path):
    base = str(server.make_url("")).rstrip("/")
    wang, li, meeting = await roll_and_meeting(server)
    assert wang["invite_url"] == f"{base}/i/{wang['invite']}"  # what the printed card holds
    video = card_video(wang["invite_url"], tmp_path)

    async with async_playwright() as pw, AsyncExitStack() as stack:
        camera = f"--use-file-for-fake-video-capture={video}"
        clerk_phone = await stack.enter_async_context(Browser(pw, camera))
        member_phone = await stack.enter_async_context(Browser(pw))

        # 李四 watches on his phone
        phone = await member_phone.new_page()
        await phone.set_viewport_size(SMALL_PHONE)
        await phone.goto(li["invite_url"])
        await phone.goto(f"{base}/m/{meeting['code']}")
        await phone.locator("#room-presence").wait_for(state="visible", timeout=SLOW)

        # the clerk's host page: the hall says which number counts for the vote
        host = await clerk_phone.new_page()
        await host.set_viewport_size(SMALL_PHONE)
        await host.add_init_script(ASKED_FOR)
        host_path = f"/meetings/{meeting['id']}/host"
        await clerk_logs_in(host, base, host_path)
        numbers = host.locator("#hall-numbers")
        await numbers.wait_for(state="visible", timeout=SLOW)
        assert (await numbers.text_content()).strip() == (
            "签到的成员（计入表决）: 0 · 会场人数（仅记入会议记录）: 未清点"
        )
        button = host.locator("#checkin-button")
        assert (await button.text_content()).strip() == "📷 扫码签到"
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44
        assert await host.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth"
        )

        # scan: the camera sees the card, the server checks her in
        await button.click()
        result = host.locator("#checkin-result")
        await host.wait_for_function(
            "() => document.getElementById('checkin-result').textContent.includes('已签到')",
            timeout=SLOW,
        )
        assert (await result.text_content()).strip() == "王秀英 已签到"
        assert await result.get_attribute("data-state") == "ok"
        assert (await numbers.text_content()).strip() == (
            "签到的成员（计入表决）: 1 · 会场人数（仅记入会议记录）: 未清点"
        )
        # the rear camera was asked for
        asked = await host.evaluate("() => JSON.stringify(window.cameraAskedFor)")
        assert '"facingMode":{"exact":"environment"}' in asked or '"environment"' in asked, asked

        # the card stays in front of the camera: she is not checked in twice
        await asyncio.sleep(5)
        assert (await numbers.text_content()).strip().startswith("签到的成员（计入表决）: 1 ")

        # the headcount goes beside it, for the minutes; below the members it is refused
        await host.click("#checkin-stop")
        assert await host.locator("#checkin-box").is_hidden()
        await host.fill("#hall-count", "0")
        await host.click("#hall-form button")
        status = host.locator("#hall-status")
        await host.wait_for_function(
            "() => document.getElementById('hall-status').textContent.includes('少于')",
            timeout=SLOW,
        )
        assert (await status.text_content()).strip() == (
            "会场人数 0 少于已签到的成员 1 人：请重新清点会场人数"
        )
        await host.fill("#hall-count", "35")
        await host.click("#hall-form button")
        await host.wait_for_function(
            "() => document.getElementById('hall-numbers').textContent.endsWith(': 35')",
            timeout=SLOW,
        )
        assert (await numbers.text_content()).strip() == (
            "签到的成员（计入表决）: 1 · 会场人数（仅记入会议记录）: 35"
        )

        # 李四's phone shows the members checked in at the hall, apart from the people
        await phone.wait_for_function(
            "() => document.getElementById('room-presence').textContent"
            ".includes('会场签到成员1人')",
            timeout=SLOW,
        )
        assert "会场35人" in await phone.text_content("#room-presence")

        # a vote: the hall's show of hands is checked against the members checked in
        await host.click("#vote-open summary")
        await host.fill("#vote-question", "同意修建村道吗？")
        await host.click("#vote-form button[type=submit]")
        hands = host.locator(".hall-counts input[data-option='同意']")
        await hands.wait_for(timeout=SLOW)
        await hands.fill("2")  # two hands, one member checked in: refused, with the numbers
        await host.click(".hall-counts button[type=submit]")
        await host.wait_for_function(
            "() => document.querySelector('.hall-counts p.small').textContent.includes('1 人')",
            timeout=SLOW,
        )
        assert (await host.text_content(".hall-counts p.small")).strip() == (
            "会场签到且未用其他方式投票的成员只有 1 人，计数合计却是 2（举手 2 + 点名 0）"
        )
        await hands.fill("1")
        await host.click(".hall-counts button[type=submit]")
        check = host.locator("#hall-hands-check")
        await check.wait_for(state="visible", timeout=SLOW)
        assert (await check.text_content()).strip() == (
            "会场举手合计 1 人，已对照：会场签到且未用其他方式投票的成员 1 人（点名已记 0 人）。"
        )

        # and the timeline records how she came in
        events = (await ServerClient(server).get_json(f"/api/meetings/{meeting['id']}/timeline"))[
            "events"
        ]
        cards = [e for e in events if e["type"] == "attendance:hall" and e.get("member")]
        assert [c["member"]["via"] for c in cards] == ["card"]
        assert cards[0]["member"]["name"] == "王秀英"
