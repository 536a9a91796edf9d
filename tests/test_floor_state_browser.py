"""Given the floor while looking at the video, a member cannot miss it (issue 14, wall 5).

Chromium at 360×740 in zh-CN, inside the loopback-only namespace like the other
browser tests. The member raises a hand, scrolls back up to the video, and the
committee gives the floor over socket.io: the speaking state (mute button and timer)
must be on the screen without scrolling, the phone must vibrate and beep, and the
state must go when the floor ends.
"""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from .support.browser import Browser, ServerClient
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}

#: counts what the page asks of the vibrator and of Web Audio (a beep = an oscillator start)
COUNT_SIGNALS = """
window.__vibrations = [];
Object.defineProperty(Navigator.prototype, "vibrate", {
  configurable: true,
  value(pattern) { window.__vibrations.push(pattern); return true; },
});
window.__beeps = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__beeps += 1;
  return start.apply(this, args);
};
"""

#: [id, top, bottom, height, visible, font size] of elements that are not fully on screen
OFF_SCREEN = """ids => ids.map(id => {
  const node = document.getElementById(id);
  const box = node.getBoundingClientRect();
  const style = getComputedStyle(node);
  const visible = box.width > 0 && box.height > 0 && style.visibility !== "hidden";
  return [id, box.top, box.bottom, box.height, visible, parseFloat(style.fontSize)];
}).filter(([, top, bottom, , visible]) =>
  !visible || top < 0 || bottom > window.innerHeight)"""


async def member_and_live_meeting(server) -> tuple[dict, dict, dict]:
    """A member on the roll, a live meeting, and the clerk's auth headers."""
    clerk = ServerClient(server)
    headers = await clerk.clerk_headers()
    member = await clerk.post_json("/api/members", json={"name": "在外打工的李四"}, headers=headers)
    meeting = await clerk.post_json(
        "/api/meetings",
        json={"title": "村民大会", "allow_guests": True, "agenda": [{"title": "修路"}]},
        headers=headers,
    )
    started = await clerk.post(f"/api/meetings/{meeting['id']}/start", headers=headers)
    assert started.status == 200
    return member, meeting, headers


async def test_the_floor_takes_over_the_screen_wherever_the_member_scrolled(server):
    base = str(server.make_url("")).rstrip("/")
    member, meeting, headers = await member_and_live_meeting(server)
    token = headers["Authorization"].removeprefix("Bearer ")
    committee = Recorder()
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            await phone.add_init_script(COUNT_SIGNALS)
            page = await phone.new_page()
            await page.set_viewport_size(SMALL_PHONE)
            await page.goto(base + "/i/" + member["invite_url"].rsplit("/i/", 1)[1])
            await page.goto(f"{base}/m/{meeting['code']}")
            await page.locator("#hand-button").wait_for(state="visible", timeout=15_000)
            await page.click("#hand-button")
            await page.wait_for_function(
                "() => document.getElementById('hand-status').textContent.includes('第1位')"
            )

            # back up to the video: the room panel is below the fold now
            await page.evaluate("() => window.scrollTo(0, 0)")
            await page.wait_for_function("() => window.scrollY === 0")
            assert await page.evaluate(
                "() => document.getElementById('player-box').getBoundingClientRect().top"
                " < window.innerHeight"
            )
            speaking_top = await page.evaluate(
                "() => document.getElementById('room-panel').getBoundingClientRect().top"
            )
            assert speaking_top > 740 / 2, "the test must start with the panel out of sight"
            assert await page.evaluate("() => window.__vibrations.length + window.__beeps") == 0

            await committee.connect(server, token)
            assert (await committee.call("join", {"meeting_id": meeting["id"]}))["ok"]
            granted = await committee.call(
                "floor:grant", {"participant_id": f"m{member['id']}", "seconds": 180}
            )
            assert granted["ok"], granted

            await page.locator("#speaking").wait_for(state="visible", timeout=10_000)
            await page.wait_for_function(
                "() => /\\d:\\d\\d/.test(document.getElementById('speaking-timer').textContent)"
            )
            assert await page.evaluate("() => window.scrollY") == 0  # nobody scrolled
            assert await page.evaluate(OFF_SCREEN, ["speak-mute", "speaking-timer"]) == []
            mute = await page.locator("#speak-mute").bounding_box()
            assert mute and mute["width"] >= 44 and mute["height"] >= 44
            assert "您正在发言" in await page.inner_text("#speaking")
            # the mute button is the topmost element where a thumb would press it
            assert await page.evaluate(
                """() => {
                  const box = document.getElementById('speak-mute').getBoundingClientRect();
                  const x = box.x + box.width / 2, y = box.y + box.height / 2;
                  const hit = document.elementFromPoint(x, y);
                  return hit && hit.closest('#speak-mute') !== null;
                }"""
            )
            await page.wait_for_function("() => window.__vibrations.length >= 1")
            await page.wait_for_function("() => window.__beeps >= 1")
            # and it still is after more scrolling, to the end of the page and back
            await page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
            assert await page.evaluate(OFF_SCREEN, ["speak-mute", "speaking-timer"]) == []

            ended = await committee.call("floor:revoke", {})
            assert ended["ok"], ended
            await page.locator("#speaking").wait_for(state="hidden", timeout=10_000)
            assert not await page.evaluate("() => document.body.classList.contains('is-speaking')")
            # no second signal for the end
            assert await page.evaluate("() => window.__vibrations.length") == 1
            await committee.close()
