"""The whole meeting on two small phones: a member with a printed card, the clerk in the hall.

Issue 14: new users hit walls on a 360 px Android phone. This walks the path once,
end to end, in real Chromium at 360×740, zh-CN, with a phone's user agent:

- the clerk logs in on a phone, opens the meeting's host page and starts it with the
  phone's (fake) camera, ticks the members sitting in the hall on the roll, gives the
  floor to a raised hand, opens a vote, enters the hall's show of hands and closes it;
- a member types the meeting code and the PIN from their card on the home page,
  watches the live picture, raises a hand, is given the floor while looking at the
  video (the speaking state, its mute button and timer, must come into view by
  itself, with a vibration and a sound), votes on the phone, reads the result's
  explanation in words, and opens the replay once the meeting has ended.

On every page it passes it checks what the phone's user would notice
(tests/support/phone.py): console and script errors, sideways scrolling, controls
under 44×44 px, text under 16 px, English left in the Chinese page. Those problems
are gathered along the way and reported together at the end, so one run lists them
all; a step of the path that does not work fails at once.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from server.keys import MEDIA

from .support.api import PASSWORD
from .support.browser import ServerClient, wait_state
from .support.phone import Phone, phone_problems, watch_errors

pytestmark = pytest.mark.netns

AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
#: generous on a busy 2-core machine running two Chromiums, the server and its recorder
SLOW = 60_000
MEDIA_WAIT = 90_000
#: for what should follow at once (a scroll, a count): long enough for a loaded machine
SOFT = 30_000

#: the member's phone records what it was asked to do to get attention
RECORD_SIGNALS = """
window.__vibrations = [];
window.__sounds = [];
Object.defineProperty(Navigator.prototype, "vibrate", {
  configurable: true, writable: true,
  value: function (pattern) { window.__vibrations.push(pattern); return true; },
});
if (window.AudioScheduledSourceNode) {
  const start = AudioScheduledSourceNode.prototype.start;
  AudioScheduledSourceNode.prototype.start = function (...args) {
    window.__sounds.push(this.constructor.name);
    return start.apply(this, args);
  };
}
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (this.tagName === "AUDIO" && this.id !== "floor-audio") window.__sounds.push("audio");
  return play.call(this);
};
"""

#: the speaking state's mute button and timer, shown and inside the screen
SPEAKING_IN_VIEW = """() => ['speak-mute', 'speaking-timer'].every((id) => {
  const node = document.getElementById(id);
  if (!node || !node.checkVisibility()) return false;
  const r = node.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left >= 0
    && r.right <= document.documentElement.clientWidth
    && (id !== 'speaking-timer' || node.textContent.trim() !== '');
})"""

SPEAKING_WHERE = """() => ['speak-mute', 'speaking-timer'].map((id) => {
  const node = document.getElementById(id);
  if (!node) return `#${id}: missing`;
  const r = node.getBoundingClientRect();
  const text = node.textContent.trim();
  return `#${id} "${text}" top ${Math.round(r.top)} bottom ${Math.round(r.bottom)}`
    + ` (screen ${innerHeight} px high, page scrolled to ${Math.round(scrollY)})`;
}).join('; ')"""


#: the host page's count of raised hands (#hand-alert) says 1 and is inside the screen
HAND_COUNT_IN_VIEW = """() => {
  const node = document.getElementById('hand-alert');
  if (!node || !node.checkVisibility() || !/1/.test(node.textContent)) return false;
  const r = node.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= innerHeight;
}"""

HAND_COUNT_WHERE = """() => {
  const node = document.getElementById('hand-alert');
  if (!node) return '#hand-alert: missing';
  const r = node.getBoundingClientRect();
  return `#hand-alert "${node.textContent.trim()}" visible ${node.checkVisibility()}`
    + ` top ${Math.round(r.top)} (page scrolled to ${Math.round(scrollY)})`;
}"""


class PageChecks:
    """The phone checks of each page passed, gathered to be reported together."""

    def __init__(self) -> None:
        #: (where, problem): each problem as a page showed it, in the path's order
        self.found: list[tuple[str, str]] = []
        self.dialogs: list[str] = []  # what the pages asked or alerted
        self._reported: dict[int, int] = {}  # id(errors) -> errors already reported

    @property
    def problems(self) -> list[str]:
        return [problem for _, problem in self.found]

    async def check(self, page, errors: list[str], where: str) -> None:
        new_errors = errors[self._reported.get(id(errors), 0) :]
        self._reported[id(errors)] = len(errors)
        for problem in await phone_problems(page, new_errors):
            self.found.append((where, problem))

    def fail(self, problem: str) -> None:
        """A wall still standing that does not stop the path: reported at the end."""
        self.found.append(("", problem))

    def report(self) -> str:
        """Each problem once, with the pages where it showed."""
        first: dict[str, str] = {}  # the problem without its place on the page -> as first seen
        pages: dict[str, list[str]] = {}
        for where, problem in self.found:
            key = re.sub(r" at \([^)]*\)", "", problem)
            first.setdefault(key, problem)
            seen = pages.setdefault(key, [])
            if where and where not in seen:
                seen.append(where)
        return "\n".join(
            f"- {first[key]}" + (f"\n    on: {'; '.join(seen)}" if seen else "")
            for key, seen in pages.items()
        )


def accept_dialogs(page, said: list[str]) -> None:
    """Say yes to every confirmation, keeping what it asked (or alerted)."""

    def on_dialog(dialog) -> None:
        said.append(f"{dialog.type} on {page.url}: {dialog.message}")
        asyncio.ensure_future(dialog.accept())

    page.on("dialog", on_dialog)


async def village_and_meeting(server) -> tuple[dict, list[dict], dict]:
    """The roll (a member with a card, two in the hall, one away) and a villagers' assembly."""
    api = ServerClient(server)
    headers = await api.clerk_headers()

    async def member(name: str) -> dict:
        return await api.post_json("/api/members", json={"name": name}, headers=headers)

    card = await member("王秀英")
    in_hall = [await member("赵大"), await member("钱二")]
    await member("孙三")  # away: eligible, not present
    meeting = await api.post_json(
        "/api/meetings",
        json={
            "title": "村民会议",
            "kind": "villagers_assembly",
            "starts_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
            "emergency_reason": "村道塌方，需尽快决定修建",
            "place": "村委会大院",
            "agenda": [{"title": "修建村道"}],
        },
        headers=headers,
    )
    assert "id" in meeting and card["pin"], (meeting, card)
    return card, in_hall, meeting


async def picture_moves(page) -> None:
    """The member's player shows a picture and its time advances."""
    await page.wait_for_function(
        "() => document.getElementById('player').videoWidth > 0", timeout=MEDIA_WAIT
    )
    start = await page.evaluate("document.getElementById('player').currentTime")
    await page.wait_for_function(
        "t => document.getElementById('player').currentTime > t + 1", arg=start, timeout=SLOW
    )


async def test_a_member_and_the_clerk_walk_the_whole_meeting_on_small_phones(server):
    base = str(server.make_url("")).rstrip("/")
    card, in_hall, meeting = await village_and_meeting(server)
    checks = PageChecks()
    try:
        async with async_playwright() as pw:
            async with Phone(pw) as clerk_phone, Phone(pw, AUTOPLAY) as member_phone:
                await walk(base, server, checks, clerk_phone, member_phone, card, in_hall, meeting)
    except BaseException:
        # the path broke: what the pages passed so far showed is worth knowing too
        if checks.problems:
            print("\nWhat a phone's user noticed before that, page by page:\n" + checks.report())
        if checks.dialogs:
            print("\nThe dialogs the pages showed:\n" + "\n".join(checks.dialogs))
        raise
    if checks.problems:
        pytest.fail("What the phones' users would notice:\n" + checks.report(), pytrace=False)


async def walk(base, server, checks, clerk_phone, member_phone, card, in_hall, meeting) -> None:
    meeting_id, code = meeting["id"], meeting["code"]

    # ------------------------------------------------ the clerk logs in and starts
    host = await clerk_phone.new_page()
    host_errors = watch_errors(host)
    accept_dialogs(host, checks.dialogs)
    await host.add_init_script(RECORD_SIGNALS)
    await host.goto(f"{base}/")
    await checks.check(host, host_errors, "home page, before logging in")
    await host.click("#login-link")
    await host.wait_for_url("**/login**")
    await checks.check(host, host_errors, "login page")
    await host.fill("#username", "clerk")
    await host.fill("#password", PASSWORD)
    await host.click("#login-button")
    await host.wait_for_url(f"{base}/", timeout=SLOW)
    await checks.check(host, host_errors, "home page, the clerk logged in")

    await host.click(f"a[href='/meetings/{meeting_id}/host']")
    await host.wait_for_url(f"{base}/meetings/{meeting_id}/host", timeout=SLOW)
    await checks.check(host, host_errors, "host page, before the start")
    await host.click("#start-button")
    await wait_state(host, "live", timeout=MEDIA_WAIT)
    hub = server.app[MEDIA]
    for _ in range(600):
        if hub.stats(str(meeting_id)).publishing:
            break
        await asyncio.sleep(0.1)
    assert hub.stats(str(meeting_id)).publishing, "the clerk's phone camera is not on the air"
    await checks.check(host, host_errors, "host page, live")

    # ------------------------------------------------ the member: code + PIN, watching
    member = await member_phone.new_page()
    member_errors = watch_errors(member)
    accept_dialogs(member, checks.dialogs)
    await member.add_init_script(RECORD_SIGNALS)
    await member.goto(f"{base}/")
    await checks.check(member, member_errors, "home page, the member with a card")
    await member.fill("#meeting-code", f"{code[:3]} {code[3:6]} {code[6:]}")  # as printed
    await member.fill("#meeting-pin", card["pin"])
    await member.click("#code-button")
    await member.wait_for_url(f"{base}/m/{code}", timeout=SLOW)
    assert (await member.text_content(".user-name")).strip() == "王秀英"
    await member.wait_for_function(
        "() => ['playing', 'ended', 'error'].includes(document.body.dataset.state)"
        " || !document.getElementById('play-button').hidden",
        timeout=MEDIA_WAIT,
    )
    if await member.locator("#play-button").is_visible():
        await member.tap("#play-button")
    await wait_state(member, "playing", timeout=MEDIA_WAIT)
    await picture_moves(member)
    await checks.check(member, member_errors, "watch page, playing")
    # the clerk's own phone is not an audience: one villager watches
    try:
        await host.wait_for_function(
            "() => document.getElementById('viewer-count').textContent.trim() === '1'",
            timeout=SOFT,
        )
    except PlaywrightTimeout:
        shown = await host.inner_text("#viewer-count")
        checks.fail(f"host page: one villager watches, the viewer count says {shown!r}")

    # ------------------------------------------------ the clerk ticks the hall's members
    await host.click("#hall-roll summary")
    for ticked, added in enumerate(in_hall, start=1):
        # tap the name, then see the count of ticked members change before the next
        await host.click(f"#hall-roll-list li:has-text('{added['name']}') label", timeout=SLOW)
        await host.wait_for_function(
            "n => document.querySelector('#hall-roll summary').dataset.count.includes(n)",
            arg=str(ticked),
            timeout=SLOW,
        )
    for added in in_hall:
        box = host.locator(f"#hall-roll-list li:has-text('{added['name']}') input")
        assert await box.is_checked(), f"{added['name']} is not ticked present"
    await checks.check(host, host_errors, "host page, the roll of the hall open and ticked")

    # ------------------------------------------------ a hand, the floor
    await host.evaluate("window.scrollTo(0, 0)")  # the clerk watches the camera's picture
    await host.evaluate("window.__vibrations.length = 0; window.__sounds.length = 0")
    await member.click("#hand-button")
    await member.wait_for_function(
        "() => /1/.test(document.getElementById('hand-status').textContent)", timeout=SLOW
    )
    await checks.check(member, member_errors, "watch page, hand raised")
    grant = host.locator(".queue-item .grant")
    await grant.wait_for(timeout=SLOW)
    # the new hand shows at the top of the clerk's screen, with a signal
    try:
        await host.wait_for_function(HAND_COUNT_IN_VIEW, timeout=SOFT)
    except PlaywrightTimeout:
        checks.fail(
            "host page scrolled to the top: no count of raised hands in view "
            f"({await host.evaluate(HAND_COUNT_WHERE)})"
        )
    if not await host.evaluate("window.__vibrations.length + window.__sounds.length"):
        checks.fail("host page: a hand was raised without a sound or vibration")
    assert "王秀英" in await host.inner_text("#hand-queue")
    await checks.check(host, host_errors, "host page, a hand raised")

    # the member looks at the video again, then the clerk gives the floor
    await member.evaluate("document.getElementById('player-box').scrollIntoView({block: 'start'})")
    await grant.click()
    await member.locator("#speaking").wait_for(state="visible", timeout=SLOW)
    try:
        await member.wait_for_function(SPEAKING_IN_VIEW, timeout=SOFT)
    except PlaywrightTimeout:
        checks.fail(
            "watch page, given the floor while looking at the video: the speaking state is "
            f"not in view: {await member.evaluate(SPEAKING_WHERE)}"
        )
    await member.wait_for_function(
        "() => document.getElementById('speaking').dataset.state === 'connected'",
        timeout=MEDIA_WAIT,
    )
    if not await member.evaluate("window.__vibrations.length"):
        checks.fail("watch page, given the floor: the phone did not vibrate (navigator.vibrate)")
    if not await member.evaluate("window.__sounds.length"):
        checks.fail("watch page, given the floor: the phone made no sound")
    await checks.check(member, member_errors, "watch page, speaking")
    await checks.check(host, host_errors, "host page, the member speaking")
    await host.click("#floor-revoke")
    await member.wait_for_selector("#speaking", state="hidden", timeout=SLOW)
    await member.locator("#hand-button").wait_for(timeout=SLOW)  # a hand to raise again
    await checks.check(member, member_errors, "watch page, the floor taken back")

    # ------------------------------------------------ the vote
    await host.click("#vote-open summary")
    await host.select_option("#vote-item", str(meeting["agenda"][0]["id"]))
    await host.fill("#vote-question", "同意修建村道吗？")
    await checks.check(host, host_errors, "host page, opening a vote")
    await host.click("#vote-form button[type=submit]")

    option = member.locator(".ballot .ballot-option", has_text="同意")
    await option.first.wait_for(timeout=SLOW)
    said = await member.inner_text("#votes-panel")
    # the phone says how many are present when the vote opens: 王秀英 online, two in the hall
    if not re.search(r"到会\s*3\s*人", said):
        checks.fail(f"watch page, a vote open: no 到会 3 人 (the number present) in {said!r}")
    await checks.check(member, member_errors, "watch page, a vote open")
    await option.first.click()
    await member.locator(".ballot .ballot-done").wait_for(timeout=SLOW)
    await checks.check(member, member_errors, "watch page, voted")

    # the hall: both ticked members raise their hands for 同意
    hands = host.locator(".hall-counts input[data-option='同意']")
    await hands.wait_for(timeout=SLOW)
    await hands.fill("2")
    await host.click(".hall-counts button[type=submit]")
    answer = host.locator(".hall-counts p.small")
    await host.wait_for_function(
        "() => document.querySelector('.hall-counts p.small').textContent.trim() !== ''",
        timeout=SLOW,
    )
    said = (await answer.inner_text()).strip()
    assert said == "已保存。", f"the hall's 2 hands for 同意 were not taken: {said!r}"
    await checks.check(host, host_errors, "host page, the hall's hands counted")
    await host.click(".close-vote")

    result = member.locator(".vote-item.closed .vote-result")
    await result.wait_for(timeout=SLOW)
    explained = re.sub(r"\s+", " ", await result.inner_text())
    assert "通过" in explained and "未通过" not in explained, explained
    for words in (r"同意\s*3\s*票", r"到会\s*3\s*人"):
        if not re.search(words, explained):
            checks.fail(f"watch page, the result: no {words!r} in its explanation {explained!r}")
    await checks.check(member, member_errors, "watch page, the result")
    await host.locator(".vote-item.closed .vote-result").wait_for(timeout=SLOW)
    await checks.check(host, host_errors, "host page, the result")

    # ------------------------------------------------ the end, and the replay
    await host.click("#end-button")
    await wait_state(host, "ended", timeout=SLOW)
    await wait_state(member, "ended", timeout=SLOW)
    await checks.check(member, member_errors, "watch page, ended")
    await checks.check(host, host_errors, "host page, ended")
    replay = member.locator("#replay-link")
    await replay.wait_for(state="visible", timeout=SLOW)
    await replay.click()
    await member.wait_for_url(f"{base}/meetings/{meeting_id}/replay**", timeout=SLOW)
    await member.wait_for_function(
        "() => ['hls', 'mp4'].includes(document.body.dataset.source)"
        " && document.getElementById('replay-player').readyState >= 1",
        timeout=MEDIA_WAIT * 2,
    )
    await checks.check(member, member_errors, "replay page")

    # once processed: the MP4, the downloads, and the minutes they lead to
    await member.locator("#download-list li[data-kind='mp4']").wait_for(timeout=MEDIA_WAIT * 2)
    await member.wait_for_function(
        "() => document.body.dataset.source === 'mp4'"
        " && document.getElementById('replay-player').readyState >= 1",
        timeout=SLOW,
    )
    await checks.check(member, member_errors, "replay page, the recording ready")
    await member.click("#download-list li[data-kind='minutes-html'] a")
    await member.wait_for_url(f"{base}/api/meetings/{meeting_id}/minutes.html**", timeout=SLOW)
    await member.locator("#minutes").wait_for(timeout=SLOW)
    await checks.check(member, member_errors, "minutes, from the replay's downloads")
