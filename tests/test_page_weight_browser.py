"""A member's phone opens a live meeting: at most 60 KB the first time, under 10 KB the next.

Issue 15 (reach): many villagers pay for every megabyte. Real Chromium as a small Android
phone (360×740, zh-CN, tests/support/phone.py), signed in as a member, opens the watch page
of a live meeting; Chromium's own accounting (CDP ``Network.loadingFinished``'s
``encodedDataLength``: headers and body as they crossed the wire, plus the socket.io
websocket's frames) is summed until the page has joined the room and the network is quiet.
Media (the WHEP exchange, HLS) is not counted. Then the same phone opens the page again by
navigating to it (no reload): what it kept must serve. scripts/bench_pages.py measures the
same way and prints the figures.
"""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from scripts.bench_pages import WATCH_READY, Transfers, visit

from .support.browser import ServerClient
from .support.phone import Phone, watch_errors

pytestmark = pytest.mark.netns

AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
FIRST_VISIT_BYTES = 60 * 1024
SECOND_VISIT_BYTES = 10 * 1024


def _listing(visit_summary: dict) -> str:
    return (
        "\n  ".join(
            f"{r['bytes']:>6} B {r['status']} {r['encoding'] or '-':<4} {r['path']}"
            + (" (media, not counted)" if r.get("media") else "")
            for r in visit_summary["responses"]
        )
        + f"\n  {visit_summary['websocket_bytes']:>6} B socket.io websocket"
    )


async def test_the_watch_page_is_light_the_first_time_and_lighter_the_next(server):
    client = ServerClient(server)
    agenda = [{"title": "村道修缮"}, {"title": "低保评议"}]
    meeting = await client.clerk_post(
        "/api/meetings", {"title": "第三季度村民会议", "agenda": agenda}
    )
    await client.clerk_post(f"/api/meetings/{meeting['id']}/start", {})
    member = await client.clerk_post("/api/members", {"name": "王五"})
    url = str(server.make_url(f"/m/{meeting['code']}"))

    async with async_playwright() as pw, Phone(pw, AUTOPLAY) as phone:
        joined = await phone.request.post(
            str(server.make_url("/api/join")), data={"invite": member["invite"]}
        )
        assert joined.ok, await joined.text()
        page = await phone.new_page()
        errors = watch_errors(page)
        transfers = await Transfers.attach(phone, page)
        first = await visit(page, transfers, url, WATCH_READY)
        # the member sees the meeting, in Chinese, as a member (not the PIN form)
        assert await page.locator("h1.page-title").inner_text() == "第三季度村民会议"
        assert await page.locator("#meeting-pin").count() == 0
        second = await visit(page, transfers, url, WATCH_READY)
        assert await page.locator("h1.page-title").inner_text() == "第三季度村民会议"
    assert not errors, errors
    print(f"\nwatch page: first visit {first['bytes']} B, second visit {second['bytes']} B")

    assert first["bytes"] <= FIRST_VISIT_BYTES, (
        f"first visit: {first['bytes']} B > {FIRST_VISIT_BYTES} B:\n  {_listing(first)}"
    )
    assert second["bytes"] < SECOND_VISIT_BYTES, (
        f"second visit: {second['bytes']} B ≥ {SECOND_VISIT_BYTES} B:\n  {_listing(second)}"
    )
    # every script, style and page came compressed; the second time, modules came from the
    # phone's cache (none crossed the network) and the page itself was a 304
    texts = [r for r in first["responses"] if r["path"].endswith((".js", ".css", ".mjs"))]
    assert texts and all(r["encoding"] == "br" for r in texts), _listing(first)
    assert not [r for r in second["responses"] if r["path"].startswith(("/static/", "/vendor/"))]
    # (Chromium reports the 304 as the 200 it had kept: a few hundred bytes of headers)
    page_again = [r for r in second["responses"] if r["path"] == f"/m/{meeting['code']}"]
    assert len(page_again) == 1 and page_again[0]["bytes"] < 500, _listing(second)
