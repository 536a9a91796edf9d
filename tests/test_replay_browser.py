"""Replay in real Chromium: a meeting really recorded from an aiortc publisher (H.264).

The clerk runs the meeting over real socket.io clients while the publisher sends:
agenda item 1, then item 2 at ~4 s, chat at ~6 s, a vote opened and closed at ~8–9 s.
After the recording is processed, the replay page must seek to agenda chapters,
highlight the chat line and the vote result at their moments, honour ``?t=``, and
search the chat. These run inside a loopback-only network namespace (scripts/test
phase 2), like every browser test.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import async_playwright

from server.http.auth import COOKIE

from .support.api import auth, log_in
from .support.browser import Browser
from .support.peers import Publisher
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

CHAT_ONE = "请大家注意修路的时间"
CHAT_TWO = "<b>Hello WORLD</b> 修路"  # markup must stay text
#: true once the timeline entry highlighted as "now" is of the type given as ``arg``
CURRENT_ENTRY_IS = "t => document.querySelector('#timeline-list li.current')?.dataset.type === t"


async def _until(check, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def _record_a_meeting(client, token: str, while_live=None) -> dict:
    """A ~14 s meeting published with H.264, with agenda moves, chat and a vote. Returns facts.

    ``while_live(meeting_id)`` is awaited 10 s in, while the meeting is still recorded.
    """
    created = await client.post(
        "/api/meetings",
        headers=auth(token),
        json={
            "title": "回放测试会议",
            "agenda": [{"title": "村道修缮"}, {"title": "低保评议"}, {"title": "其他"}],
        },
    )
    meeting = await created.json()
    items = [item["id"] for item in meeting["agenda"]]
    member = await (
        await client.post("/api/members", json={"name": "王五"}, headers=auth(token))
    ).json()
    joined = await (await client.post("/api/join", json={"invite": member["invite"]})).json()
    client.session.cookie_jar.clear()
    assert (
        await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(token))
    ).status == 200

    host, villager = Recorder(), Recorder()
    publisher = Publisher(width=320, height=240, codec="video/H264")
    try:
        await host.connect(client, token)
        await villager.connect(client, joined["token"])
        assert (await host.call("join", {"meeting_id": meeting["id"]}))["ok"]
        assert (await villager.call("join", {"meeting_id": meeting["id"]}))["ok"]
        await publisher.publish(client, meeting["id"], token)

        async def first_frame():
            response = await client.get(
                f"/api/meetings/{meeting['id']}/recording", headers=auth(token)
            )
            return response.status == 200 and (await response.json())["started_at"]

        await _until(first_frame, 15, "the recording's first frame", every=0.1)
        began = time.monotonic()

        async def at(second: float) -> None:
            await asyncio.sleep(max(0.0, began + second - time.monotonic()))

        await at(1)
        assert (await host.call("agenda:goto", {"item_id": items[0]}))["ok"]
        await at(4)
        assert (await host.call("agenda:goto", {"item_id": items[1]}))["ok"]
        await at(5)
        assert (await villager.call("hand:raise", {}))["ok"]
        await at(6)
        assert (await villager.call("chat:send", {"text": CHAT_ONE}))["ok"]
        await at(7)
        assert (await host.call("chat:send", {"text": CHAT_TWO}))["ok"]
        await at(8)
        opened = await host.call("vote:open", {"item_id": items[1], "question": "同意低保名单吗？"})
        assert opened["ok"], opened
        assert (await villager.call("vote:cast", {"vote_id": opened["vote_id"], "choice": "同意"}))[
            "ok"
        ]
        await at(9)
        closed = await host.call("vote:close", {"vote_id": opened["vote_id"]})
        assert closed["ok"], closed
        await at(10)
        if while_live is not None:
            await while_live(meeting["id"])
        await at(14)
        assert publisher.pc.connectionState == "connected"
        ended = await client.post(f"/api/meetings/{meeting['id']}/end", headers=auth(token))
        assert ended.status == 200
    finally:
        await publisher.close()
        await asyncio.gather(host.close(), villager.close(), return_exceptions=True)

    async def ready():
        response = await client.get(f"/api/meetings/{meeting['id']}/recording", headers=auth(token))
        body = await response.json()
        assert body["status"] not in ("failed", "expired"), body
        return body if body["status"] == "ready" else None

    recording = await _until(ready, 90, "the recording to be processed")
    timeline = (
        await (
            await client.get(f"/api/meetings/{meeting['id']}/timeline", headers=auth(token))
        ).json()
    )["events"]

    def moment(type_, **match):
        return next(
            e["t"]
            for e in timeline
            if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())
        )

    return {
        "meeting": meeting,
        "items": items,
        "recording": recording,
        "closed": closed,
        "t_item2": moment("agenda:current", item_id=items[1]),
        "t_chat": moment("chat:message", text=CHAT_ONE),
        "t_chat2": moment("chat:message", text=CHAT_TWO),
        "t_vote": moment("vote:closed"),
    }


async def _current_time(page) -> float:
    return await page.evaluate("document.getElementById('replay-player').currentTime")


async def _seek(page, seconds: float) -> None:
    """Move the playhead as the player's own seek bar does."""
    await page.evaluate(
        """async (t) => {
        const v = document.getElementById('replay-player');
        v.pause();
        const done = new Promise(
          (resolve) => v.addEventListener('seeked', resolve, { once: true }));
        v.currentTime = t;
        await done;
    }""",
        seconds,
    )


async def _highlighted_at(page, seconds: float, event_type: str) -> dict:
    """Seek to ``seconds``; once the timeline highlights an ``event_type`` entry, that entry."""
    await _seek(page, seconds)
    await page.wait_for_function(CURRENT_ENTRY_IS, arg=event_type, timeout=5_000)
    return await _highlighted(page)


async def _highlighted(page) -> dict:
    return await page.evaluate("""() => {
        const li = document.querySelector('#timeline-list li.current');
        return li ? { type: li.dataset.type, text: li.innerText } : null;
    }""")


async def test_replay_chapters_timeline_votes_and_links(server, aiohttp_client):
    client = await aiohttp_client(server)
    token = await log_in(client)
    base = str(server.make_url("")).rstrip("/")

    async with async_playwright() as pw:
        async with Browser(pw, "--autoplay-policy=no-user-gesture-required") as browser:
            await browser.add_cookies([{"name": COOKIE, "value": token, "url": base}])
            page = await browser.new_page()
            broken = []
            page.on(
                "response", lambda r: broken.append((r.status, r.url)) if r.status >= 400 else None
            )

            async def while_live(meeting_id):
                # the meeting is still going on: the recording so far plays over HLS (hls.js)
                await page.goto(f"{base}/meetings/{meeting_id}/replay")
                await page.wait_for_function(
                    "document.body.dataset.source === 'hls'", timeout=10_000
                )
                await page.wait_for_function(
                    "document.getElementById('replay-player').readyState >= 1", timeout=10_000
                )
                assert "会议仍在进行" in await page.inner_text("#replay-notice")
                assert await page.locator("#download-list li[data-kind='mp4']").count() == 0

            facts = await _record_a_meeting(client, token, while_live)
            meeting_id = facts["meeting"]["id"]
            assert facts["recording"]["mp4"] and facts["recording"]["audio"]
            assert 3.0 < facts["t_item2"] < facts["t_chat"] < facts["t_chat2"] < facts["t_vote"]
            url = f"{base}/meetings/{meeting_id}/replay"

            # the open page noticed by itself that the MP4 is ready, and switched to it
            await page.wait_for_function("document.body.dataset.source === 'mp4'", timeout=15_000)
            assert await page.locator("#download-list li[data-kind='mp4']").count() == 1
            await page.wait_for_selector(
                "#download-list li[data-kind='minutes-html'] a", timeout=5_000
            )
            await page.goto(url)
            await page.wait_for_function("document.body.dataset.source === 'mp4'", timeout=15_000)
            # Debian's Chromium decodes H.264 in MP4
            assert await page.evaluate(
                "document.getElementById('replay-player')"
                ".canPlayType('video/mp4; codecs=\"avc1.42E01E\"')"
            ) in ("probably", "maybe")
            await page.wait_for_function(
                "document.getElementById('replay-player').readyState >= 1", timeout=15_000
            )
            duration = await page.evaluate("document.getElementById('replay-player').duration")
            assert 11 < duration < 30, duration

            # tapping agenda chapter 2 seeks to the moment it was taken up, and plays
            chapter = page.locator(f'#chapter-list li[data-item-id="{facts["items"][1]}"] button')
            await chapter.click()
            await page.wait_for_function(
                "t => Math.abs(document.getElementById('replay-player').currentTime - t) < 0.5",
                arg=facts["t_item2"],
                timeout=5_000,
            )
            await page.wait_for_function(
                "t => document.getElementById('replay-player').currentTime > t + 0.8",
                arg=facts["t_item2"],
                timeout=10_000,
            )  # really playing: the picture decodes
            assert await page.evaluate("document.getElementById('replay-player').videoWidth") == 320
            assert "current" in await page.locator(
                f'#chapter-list li[data-item-id="{facts["items"][1]}"]'
            ).get_attribute("class")
            assert "低保评议" in await page.inner_text("#replay-now")
            # chapter 3 was never taken up
            assert await page.locator(
                f'#chapter-list li[data-item-id="{facts["items"][2]}"] button'
            ).is_disabled()

            # the chat line is highlighted at its moment
            current = await _highlighted_at(page, facts["t_chat"] + 0.3, "chat:message")
            assert CHAT_ONE in current["text"] and "王五" in current["text"]

            # ... and the vote's result at its moment
            current = await _highlighted_at(page, facts["t_vote"] + 0.3, "vote:closed")
            closed = facts["closed"]
            verdict = (
                "到会人数不足，表决无效"
                if not closed["quorum_met"]
                else ("通过" if closed["passed"] else "未通过")
            )
            assert "同意低保名单吗？" in current["text"] and verdict in current["text"], current
            tally = await page.evaluate("""() => [...document.querySelectorAll(
                '#timeline-list li.current .vote-tally li')].map((li) => [
                li.querySelector('.vote-option-name').textContent,
                Number(li.querySelector('.vote-option-count').textContent)])""")
            assert dict(tally) == closed["tally"] and closed["tally"]["同意"] == 1

            # tapping a timeline entry seeks to it
            await page.evaluate("document.getElementById('replay-player').pause()")
            await page.locator("#timeline-list li[data-type='chat:message']").nth(1).click()
            await page.wait_for_function(
                "t => Math.abs(document.getElementById('replay-player').currentTime - t) < 0.6",
                arg=facts["t_chat2"],
                timeout=5_000,
            )
            # markup in chat is shown as text
            assert await page.locator("#timeline-list b").count() == 0
            assert CHAT_TWO in await page.inner_text("#timeline-list")

            # search filters the chat lines (case-insensitive substring)
            await page.fill("#chat-search", "world")
            chats = page.locator("#timeline-list li[data-type='chat:message']")
            assert await chats.nth(0).is_hidden() and await chats.nth(1).is_visible()
            assert await page.locator("#timeline-list li[data-type='vote:closed']").is_visible()
            await page.fill("#chat-search", "修路")
            assert await chats.nth(0).is_visible() and await chats.nth(1).is_visible()
            await page.fill("#chat-search", "")

            # downloads: MP4, audio, minutes
            for kind in ("mp4", "audio", "minutes-html", "minutes-md"):
                assert await page.locator(
                    f"#download-list li[data-kind='{kind}'] a"
                ).is_visible(), kind
            href = await page.locator("#download-list li[data-kind='audio'] a").get_attribute(
                "href"
            )
            assert href == facts["recording"]["audio"]

            # the link to this moment
            await _seek(page, facts["t_chat"] + 0.4)
            await page.click("#copy-moment")
            await page.wait_for_selector("#copy-status:not([hidden])")
            link = (
                await page.input_value("#copy-fallback")
                if await page.locator("#copy-fallback").is_visible()
                else await page.inner_text("#copy-status")
            )
            assert f"/meetings/{meeting_id}/replay?t={int(facts['t_chat'] + 0.4)}" in link

            # ?t= on load seeks there, and the record follows
            moment = round(facts["t_chat"] + 0.5, 1)
            other = await browser.new_page()
            await other.goto(f"{url}?t={moment}")
            await other.wait_for_function(
                "t => Math.abs(document.getElementById('replay-player').currentTime - t) < 0.5",
                arg=moment,
                timeout=15_000,
            )
            await other.wait_for_function(CURRENT_ENTRY_IS, arg="chat:message", timeout=5_000)

            # a phone 360 px wide: nothing sticks out sideways
            await other.set_viewport_size({"width": 360, "height": 740})
            assert await other.evaluate("document.documentElement.scrollWidth") <= 360
            # a desktop: the timeline sits beside the video
            await other.set_viewport_size({"width": 1280, "height": 800})
            video = await other.locator("#replay-video-box").bounding_box()
            timeline = await other.locator(".replay-timeline").bounding_box()
            assert (
                timeline["x"] >= video["x"] + video["width"] - 1
                and timeline["y"] < video["y"] + video["height"]
            )
            assert [b for b in broken if not b[1].endswith("favicon.ico")] == []


async def test_replay_page_without_a_recording_says_so(server, aiohttp_client):
    client = await aiohttp_client(server)
    token = await log_in(client)
    meeting = await (
        await client.post(
            "/api/meetings",
            json={"title": "没开成的会", "agenda": [{"title": "一"}]},
            headers=auth(token),
        )
    ).json()
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as browser:
            await browser.add_cookies([{"name": COOKIE, "value": token, "url": base}])
            page = await browser.new_page()
            await page.goto(f"{base}/meetings/{meeting['id']}/replay")
            await page.wait_for_function("document.body.dataset.state === 'none'", timeout=10_000)
            assert "会议尚未开始" in await page.inner_text("#replay-overlay")
            assert await page.locator("#downloads").is_hidden()
            assert await page.locator("#copy-moment").is_hidden()
