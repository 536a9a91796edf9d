"""Users in real Chromium: the clerk starts the meeting from the camera, villagers watch.

These run inside a loopback-only network namespace (scripts/test phase 2), so no
media can leave the machine.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import async_playwright

from server.keys import MEDIA

from .support.browser import (
    Browser,
    ServerClient,
    clerk_logs_in,
    host_starts_meeting,
    wait_state,
)
from .support.peers import Viewer

pytestmark = pytest.mark.netns


BLOCK_AUTOPLAY_WITH_SOUND = """
// (navigator.userActivation is already set in Playwright's pages: count real taps.)
let tapped = false;
addEventListener("pointerdown", () => { tapped = true; }, true);
const realPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!this.muted && !tapped) {
    return Promise.reject(new DOMException(
      "play() failed because the user didn't interact with the document first.",
      "NotAllowedError"));
  }
  return realPlay.call(this);
};
"""


async def video_is_playing(page) -> tuple[int, float, float]:
    """The picture arrives (videoWidth > 0) and time advances."""
    await page.wait_for_function(
        "() => document.getElementById('player').videoWidth > 0", timeout=10_000
    )
    width = await page.evaluate("document.getElementById('player').videoWidth")
    t0 = await page.evaluate("document.getElementById('player').currentTime")
    await asyncio.sleep(1.5)
    t1 = await page.evaluate("document.getElementById('player').currentTime")
    return width, t0, t1


async def test_clerk_publishes_from_the_browser_and_villagers_watch(server):
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as host:
            page = await host.new_page()
            meeting_id = await host_starts_meeting(page, base)
            hub = server.app[MEDIA]
            # on the air with the camera's first frame, a moment after "live" (connected)
            for _ in range(100):
                if hub.stats(str(meeting_id)).publishing:
                    break
                await asyncio.sleep(0.05)
            assert hub.stats(str(meeting_id)).publishing

            # Chromium publishes H.264 (the room's first choice), and five aiortc
            # viewers receive it as forwarded, never re-encoded; one decodes it.
            assert hub.room(str(meeting_id)).video_codec == "video/h264"
            viewers = [Viewer(decode=True)] + [Viewer(decode=False) for _ in range(4)]
            try:
                for viewer in viewers:
                    await viewer.watch(ServerClient(server), meeting_id)
                await asyncio.gather(*(v.wait_for(video=30, audio=10, timeout=15) for v in viewers))
                width, height = next(iter(viewers[0].sizes))
                assert width >= 320 and height >= 240
                assert all(v.keyframe_first for v in viewers[1:])
            finally:
                await asyncio.gather(*(v.close() for v in viewers))

            # a villager opens the meeting link on a phone and it plays
            code = (await ServerClient(server).get_json(f"/api/meetings/{meeting_id}"))["code"]
            async with Browser(pw, "--autoplay-policy=no-user-gesture-required") as villager:
                watch = await villager.new_page()
                broken = []
                watch.on("response", lambda r: broken.append(r.url) if r.status >= 400 else None)
                await watch.goto(f"{base}/m/{code}")
                await wait_state(watch, "playing")
                width, t0, t1 = await video_is_playing(watch)
                assert width > 0 and t1 > t0, (width, t0, t1)
                assert [u for u in broken if not u.endswith("favicon.ico")] == []
                # the clerk sees the audience
                await page.wait_for_function(
                    "() => Number(document.getElementById('viewer-count')"
                    ".textContent.replace(/\\D/g, '')) >= 1",
                    timeout=10_000,
                )

                # the clerk ends the meeting: the villager is told
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await page.click("#end-button")
                await wait_state(page, "ended")
                await wait_state(watch, "ended")
            assert not hub.stats(str(meeting_id)).publishing


async def test_blocked_autoplay_shows_a_big_play_button(server):
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as host:
            page = await host.new_page()
            meeting_id = await host_starts_meeting(page, base)
            code = (await ServerClient(server).get_json(f"/api/meetings/{meeting_id}"))["code"]
            async with Browser(pw, "--autoplay-policy=document-user-activation-required") as phone:
                watch = await phone.new_page()
                # Headless Chromium lets WebRTC streams autoplay with sound whatever the
                # flag says; a phone's browser does not. Enforce the phone's rule.
                await watch.add_init_script(BLOCK_AUTOPLAY_WITH_SOUND)
                await watch.goto(f"{base}/m/{code}")
                button = watch.locator("#play-button")
                await button.wait_for(state="visible", timeout=20_000)
                box = await button.bounding_box()
                assert box["height"] >= 44 and box["width"] >= 120  # big enough to find
                await button.click()
                await wait_state(watch, "playing")
                muted = await watch.evaluate("document.getElementById('player').muted")
                assert muted is False  # one tap gives sound
                width, t0, t1 = await video_is_playing(watch)
                assert width > 0 and t1 > t0


async def test_watch_page_says_when_the_meeting_has_not_started(server):
    base = str(server.make_url("")).rstrip("/")
    headers = await ServerClient(server).clerk_headers()
    response = await ServerClient(server).post(
        "/api/meetings",
        json={"title": "下周会议", "allow_guests": True},
        headers=headers,
    )
    meeting = await response.json()
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            watch = await phone.new_page()
            await watch.goto(f"{base}/m/{meeting['code']}")
            await wait_state(watch, "waiting")
            assert "尚未开始" in await watch.inner_text("body")


async def member_and_live_meeting(
    server, name: str, title: str
) -> tuple[ServerClient, dict, dict, dict]:
    """The clerk adds a member, starts a members-only meeting: (api, headers, member, meeting)."""
    api = ServerClient(server)
    headers = await api.clerk_headers()
    member = await api.post_json("/api/members", json={"name": name}, headers=headers)
    meeting = await api.post_json(
        "/api/meetings", json={"title": title}, headers=headers
    )  # members only
    await api.post(f"/api/meetings/{meeting['id']}/start", headers=headers)
    return api, headers, member, meeting


async def test_member_opens_invite_link_and_watches_members_only_meeting(server):
    """A migrant worker taps the personal link from the committee, then the meeting plays."""
    from .support.peers import Publisher

    base = str(server.make_url("")).rstrip("/")
    api, headers, member, meeting = await member_and_live_meeting(server, "李四", "村民代表会议")

    publisher = Publisher(width=320, height=240)
    try:
        await publisher.publish(api, meeting["id"], headers["Authorization"][7:])
        async with async_playwright() as pw:
            async with Browser(pw, "--autoplay-policy=no-user-gesture-required") as phone:
                page = await phone.new_page()
                # without the invite the meeting is closed to this phone
                await page.goto(f"{base}/m/{meeting['code']}")
                await wait_state(page, "forbidden")
                # the card's link lands straight on the meeting live now (issue 14)
                await page.goto(member["invite_url"])
                assert page.url == f"{base}/m/{meeting['code']}"
                assert "村民代表会议" in await page.inner_text("body")
                await wait_state(page, "playing")
                width, t0, t1 = await video_is_playing(page)
                assert width == 320 and t1 > t0
    finally:
        await publisher.close()


async def test_clerk_schedules_an_assembly_with_short_notice_and_villagers_see_a_cancellation(
    server,
):
    """The form asks for the emergency behind a short notice; a cancellation reaches the phone."""
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as clerk:
            page = await clerk.new_page()
            await clerk_logs_in(page, base)
            await page.fill("#title", "防汛紧急村民会议")
            await page.select_option("#kind", "villagers_assembly")
            await page.fill("#starts-at", "2030-01-01T09:00")
            assert await page.is_hidden("#emergency-field")  # years ahead: no warning
            tomorrow = await page.evaluate(
                "() => { const d = new Date(Date.now() + 86400000);"
                " d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
                " return d.toISOString().slice(0, 16); }"
            )
            await page.fill("#starts-at", tomorrow)
            await page.wait_for_selector("#emergency-field", state="visible")
            assert "十天" in await page.inner_text("#emergency-field")
            await page.fill("#emergency-reason", "汛期河堤加固")
            await page.fill("#place", "村委会大院")
            await page.check("#allow-guests")
            await page.click("#create-button")
            await page.wait_for_url("**/meetings/*/host")
            meeting_id = int(page.url.rstrip("/").split("/")[-2])

        api = ServerClient(server)
        headers = await api.clerk_headers()
        meeting = await api.get_json(f"/api/meetings/{meeting_id}")
        assert meeting["kind"] == "villagers_assembly"
        assert meeting["emergency_reason"] == "汛期河堤加固" and meeting["place"] == "村委会大院"

        async with Browser(pw) as phone:
            watch = await phone.new_page()
            await watch.goto(f"{base}/m/{meeting['code']}")
            await wait_state(watch, "waiting")
            await api.post(
                f"/api/meetings/{meeting_id}/cancel",
                json={"reason": "<b>改期</b> 另行通知"},
                headers=headers,
            )
            await wait_state(watch, "cancelled")
            text = await watch.inner_text("body")
            assert "会议已取消" in text and "<b>改期</b> 另行通知" in text  # shown as text


async def test_printed_notice_qr_code_scans_to_the_meeting_link(server, tmp_path):
    """The notice board's QR code, rendered by Chromium, decodes to the join link."""
    import shutil
    import subprocess

    if shutil.which("zbarimg") is None:
        pytest.skip("QR NOT CHECKED: zbarimg missing (apt-get install zbar-tools)")
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    meeting = await api.post_json(
        "/api/meetings", json={"title": "公告", "allow_guests": True}, headers=headers
    )
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            page = await phone.new_page()
            await page.goto(f"{base}/meetings/{meeting['id']}/notice")
            await page.wait_for_function(
                "() => document.getElementById('notice-qr').naturalWidth > 0"
            )
            shot = tmp_path / "qr.png"
            await page.locator("#notice-qr").screenshot(path=str(shot))
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", str(shot)], capture_output=True, text=True, timeout=30
    )
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == meeting["join_url"]


def _decode_qr(path) -> str:
    import subprocess

    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, timeout=30
    )
    assert decoded.returncode == 0, decoded.stderr
    return decoded.stdout.strip()


async def test_clerk_keeps_the_roll_and_a_printed_card_signs_a_phone_in(server, tmp_path):
    """Import from Excel (GBK), fix a refused file, add, edit, print a card, remove."""
    import shutil

    if shutil.which("zbarimg") is None:
        pytest.skip("QR NOT CHECKED: zbarimg missing (apt-get install zbar-tools)")
    base = str(server.make_url("")).rstrip("/")
    bad = tmp_path / "名册-有错.csv"
    bad.write_bytes(
        "姓名,电话,出生年份,代表\n王大山,13800000001,1965,是\n,13800000002,1970,否\n".encode("gbk")
    )
    good = tmp_path / "名册.csv"
    good.write_bytes(
        "姓名,电话,户,出生年份,代表\n王大山,13800000001,一组,1965,是\n"
        "刘小梅,13800000002,二组,2010,否\n".encode("gbk")
    )
    async with async_playwright() as pw:
        async with Browser(pw) as clerk:
            page = await clerk.new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await clerk_logs_in(page, base, "/members")
            assert await page.is_visible("#roll-empty")

            await page.set_input_files("#import-file", str(bad))
            await page.wait_for_selector("#import-report", state="visible")
            assert "没有导入任何村民" in await page.inner_text("#import-result")
            report = await page.inner_text("#import-report tbody")
            assert "3" in report and "没有姓名" in report
            assert await page.locator("#roll-body tr").count() == 0  # nothing half-imported

            await page.set_input_files("#import-file", str(good))
            await page.wait_for_function(
                "() => document.querySelectorAll('#roll-body tr').length === 2"
            )
            assert "已添加2位村民" in await page.inner_text("#import-result")
            summary = await page.inner_text("#roll-summary")
            assert "共2人" in summary and "年满18周岁1人" in summary and "村民代表1人" in summary

            await page.click("#add-button")
            await page.fill("#member-name", "<img src=x onerror=alert(1)>赵")
            await page.fill("#member-phone", "13800000001")  # 王大山's phone
            await page.click("#member-save")
            await page.wait_for_selector("#member-error", state="visible")
            assert "电话号码" in await page.inner_text("#member-error")
            await page.fill("#member-phone", "13800000003")
            await page.click("#member-save")
            await page.wait_for_selector("#invite-card", state="visible")
            pin = (await page.inner_text("#invite-pin")).strip()
            invite_url = await page.input_value("#invite-url")
            assert len(pin) == 6 and invite_url.startswith(f"{base}/i/")
            row = page.locator("#roll-body tr", has_text="onerror")
            assert await row.count() == 1
            assert await page.locator("#roll-body img").count() == 0  # the name stayed text

            await row.locator("button.edit").click()
            await page.fill("#member-household", "三组")
            await page.click("#member-save")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#roll-body tr')]"
                ".some(r => r.textContent.includes('三组'))"
            )

            member_id = await row.get_attribute("data-member-id")
            cards = await clerk.new_page()
            await cards.goto(f"{base}/members/cards?ids={member_id}")
            assert await cards.locator(".member-card").count() == 1
            assert pin in await cards.inner_text(".member-card")
            shot = tmp_path / "card-qr.png"
            await cards.locator(".member-card-qr").screenshot(path=str(shot))
            card_url = _decode_qr(shot)
            assert card_url.startswith(f"{base}/i/")

        async with Browser(pw) as phone, Browser(pw) as clerk:
            villager = await phone.new_page()
            await villager.goto(card_url)
            assert "您好" in await villager.inner_text("#member-greeting")

            page = await clerk.new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await clerk_logs_in(page, base, "/members")
            await page.locator("#roll-body tr", has_text="onerror").locator("button.remove").click()
            await page.wait_for_function(
                "() => document.querySelectorAll('#roll-body tr').length === 2"
            )
            await villager.goto(card_url)  # a removed member's card no longer works
            assert "invite=invalid" in villager.url


async def test_clerk_edits_then_cancels_a_scheduled_meeting(server):
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as clerk:
            page = await clerk.new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await clerk_logs_in(page, base)
            await page.fill("#title", "村务公开会")
            await page.locator(".agenda-title").first.fill("财务公开")
            await page.fill("#starts-at", "2030-03-01T09:30")
            await page.click("#create-button")
            await page.wait_for_url("**/meetings/*/host")

            await page.click("#edit-link")
            await page.wait_for_url("**/meetings/*/edit")
            assert await page.input_value("#title") == "村务公开会"
            assert await page.input_value("#starts-at") == "2030-03-01T09:30"  # local time kept
            assert await page.locator(".agenda-title").first.input_value() == "财务公开"
            await page.fill("#title", "村务公开会（改）")
            await page.click("#add-agenda-item")
            await page.locator(".agenda-title").nth(1).fill("低保名单")
            await page.click("#create-button")
            await page.wait_for_url("**/meetings/*/host")
            assert "村务公开会（改）" in await page.inner_text("h1")
            assert "低保名单" in await page.inner_text("#agenda")

            await page.click("#cancel-details summary")
            await page.click("#cancel-button")
            assert await page.is_visible("#cancel-error")  # a reason is required
            await page.fill("#cancel-reason", "与镇里会议冲突")
            await page.click("#cancel-button")
            await page.wait_for_selector("#cancelled-note")
            assert "与镇里会议冲突" in await page.inner_text("#cancelled-note")
            assert await page.is_disabled("#start-button")

            await page.goto(f"{base}/")
            past = await page.inner_text("#past-list")
            assert "村务公开会（改）" in past and "已取消" in past


async def test_chat_and_names_with_markup_are_shown_as_text(server):
    """A member and a guest chat on their phones; markup in text and names stays inert."""
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    member = await api.post_json(
        "/api/members", json={"name": "<img src=x onerror=window.__xss=1>张"}, headers=headers
    )
    meeting = await api.post_json(
        "/api/meetings",
        json={"title": "村务", "allow_guests": True, "allow_guest_chat": True},
        headers=headers,
    )
    await api.post(f"/api/meetings/{meeting['id']}/start", headers=headers)
    payloads = [
        "<img src=x onerror=window.__xss=1>",
        "<script>window.__xss=2</script>",
        "javascript:window.__xss=3",
        "看这里 https://example.com/notice?a=1&b=<b>2</b> 谢谢",
    ]
    async with async_playwright() as pw:
        async with Browser(pw) as member_phone, Browser(pw) as guest_phone:
            villager = await member_phone.new_page()
            await villager.goto(member["invite_url"])
            await villager.goto(f"{base}/m/{meeting['code']}")
            await villager.wait_for_selector("#chat-form:not([hidden])")

            guest = await guest_phone.new_page()
            await guest.goto(f"{base}/m/{meeting['code']}")
            await guest.wait_for_selector("#guest-form:not([hidden])")
            await guest.fill("#guest-name", "<b onmouseover=window.__xss=4>老王</b>")
            await guest.click("#guest-form button")
            await guest.wait_for_selector("#chat-form:not([hidden])")
            await guest.fill("#chat-input", "大家好")
            await guest.press("#chat-input", "Enter")

            for text in payloads:
                await villager.fill("#chat-input", text)
                await villager.click("#chat-form button")
                await villager.wait_for_function(
                    "() => document.getElementById('chat-input').value === ''"
                )
            for page in (villager, guest):
                await page.wait_for_function(
                    "n => document.querySelectorAll('#chat-list .chat-line').length === n",
                    arg=len(payloads) + 1,
                )
                lines = await page.locator("#chat-list .chat-text").all_inner_texts()
                assert lines[1:] == payloads
                authors = await page.locator("#chat-list .chat-author").all_inner_texts()
                assert authors[0] == "<b onmouseover=window.__xss=4>老王</b>"
                assert authors[1] == "<img src=x onerror=window.__xss=1>张"
                assert (
                    await page.locator("#chat-list img, #chat-list script, #chat-list b").count()
                    == 0
                )
                hrefs = await page.eval_on_selector_all("#chat-list a", "as => as.map(a => a.href)")
                assert hrefs == ["https://example.com/notice?a=1&b="]  # a link stops at markup
                assert await page.evaluate("() => window.__xss") is None


# Loudness of an <audio> element's stream over a while: the largest sample seen.
LOUDNESS = """async ([id, ms]) => {
  const element = document.getElementById(id);
  if (!element.srcObject) return -1;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaStreamSource(element.srcObject).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let peak = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    analyser.getFloatTimeDomainData(data);
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    await new Promise((r) => setTimeout(r, 20));
  }
  await ctx.close();
  return peak;
}"""


async def test_a_remote_villager_given_the_floor_is_heard_in_the_hall_and_online(server):
    """Raise a hand on the phone, the host grants the floor, the hall and viewers hear them."""
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    speaker = await api.post_json("/api/members", json={"name": "在外打工的李四"}, headers=headers)
    listener = await api.post_json("/api/members", json={"name": "王五"}, headers=headers)
    autoplay = "--autoplay-policy=no-user-gesture-required"
    async with async_playwright() as pw:
        async with (
            Browser(pw, autoplay) as hall,
            Browser(pw, autoplay) as phone,
            Browser(pw, autoplay) as other,
        ):
            host = await hall.new_page()
            await host_starts_meeting(host, base)
            meeting_code = (await host.input_value("#join-url")).rsplit("/", 1)[-1]

            villager = await phone.new_page()
            await villager.goto(speaker["invite_url"])
            await villager.goto(f"{base}/m/{meeting_code}")
            await villager.wait_for_selector("#hand-row:not([hidden])")
            await villager.click("#hand-button")
            await villager.wait_for_function(
                "() => document.getElementById('hand-status').textContent.includes('第1位')"
            )

            watcher = await other.new_page()
            await watcher.goto(listener["invite_url"])
            await watcher.goto(f"{base}/m/{meeting_code}")
            await wait_state(watcher, "playing")

            await host.wait_for_selector(".queue-item .grant")
            assert "在外打工的李四" in await host.inner_text("#hand-queue")
            await host.select_option("#floor-seconds", "")
            await host.click(".queue-item .grant")
            await villager.wait_for_selector("#speaking:not([hidden])")
            await villager.wait_for_function(
                "() => document.getElementById('speaking').dataset.state === 'connected'",
                timeout=15_000,
            )
            assert "李四" in await watcher.inner_text("#floor-banner")

            for page in (host, watcher):
                await page.wait_for_function(
                    "() => document.getElementById('floor-audio').srcObject", timeout=10_000
                )
                assert await page.evaluate(LOUDNESS, ["floor-audio", 3000]) > 0.05, "no voice heard"

            await host.click("#floor-revoke")
            await villager.wait_for_selector("#speaking", state="hidden")
            await asyncio.sleep(0.5)
            for page in (host, watcher):
                assert await page.evaluate(LOUDNESS, ["floor-audio", 2500]) < 0.01, "still heard"

            # the hall is counted on the host page, and members are ticked present from the roll
            await host.fill("#hall-count", "35")
            await host.click("#hall-form button")
            await watcher.wait_for_function(
                "() => document.getElementById('room-presence').textContent.includes('会场35人')"
            )
            await host.click("#hall-roll summary")
            await host.check("#hall-roll-list li:has-text('王五') input")
            await host.wait_for_function(
                "() => document.querySelector('#hall-roll summary').dataset.count.includes('1')"
            )
            meeting_id = int(host.url.rstrip("/").split("/")[-2])
            events = (await api.get_json(f"/api/meetings/{meeting_id}/timeline"))["events"]
            ticks = [e for e in events if e["type"] == "attendance:hall" and e.get("member")]
            assert ticks[-1]["member"]["name"] == "王五" and ticks[-1]["in_hall"] == 35


async def test_villagers_vote_on_their_phones_and_check_their_receipts(server):
    """The host opens a vote on an agenda item, two phones vote, the result is announced."""
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    members = [
        await api.post_json("/api/members", json={"name": n}, headers=headers)
        for n in ("赵大", "钱二")
    ]
    meeting = await api.post_json(
        "/api/meetings",
        json={"title": "村务表决", "agenda": [{"title": "修建村道"}]},
        headers=headers,
    )
    await api.post(f"/api/meetings/{meeting['id']}/start", headers=headers)
    absent = await api.post_json("/api/members", json={"name": "孙三"}, headers=headers)
    await api.post("/api/members", json={"name": "在场的李四"}, headers=headers)
    proxy = await api.post(
        f"/api/meetings/{meeting['id']}/proxies",
        headers=headers,
        json={"member_id": absent["id"], "proxy_id": members[0]["id"]},
    )
    assert proxy.status == 201
    async with async_playwright() as pw:
        async with Browser(pw) as hall, Browser(pw) as phone1, Browser(pw) as phone2:
            host = await hall.new_page()
            host.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await clerk_logs_in(host, base, f"/meetings/{meeting['id']}/host")
            await host.click("#agenda .agenda-goto")
            phones = []
            for browser, added in ((phone1, members[0]), (phone2, members[1])):
                page = await browser.new_page()
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await page.goto(added["invite_url"])
                await page.goto(f"{base}/m/{meeting['code']}")
                await page.wait_for_selector("#agenda .agenda-item.current")
                phones.append(page)

            await host.click("#vote-open summary")
            await host.select_option("#vote-item", str(meeting["agenda"][0]["id"]))
            await host.fill("#vote-question", "同意修建村道吗？")
            await host.click("#vote-form button[type=submit]")
            own = ".ballot:not(:has(.ballot-for))"
            for page, choice in zip(phones, ("同意", "反对"), strict=True):
                await page.wait_for_selector(".ballot-option")
                assert "同意修建村道吗？" in await page.inner_text("#votes-panel")
                await page.click(f"{own} .ballot-option:has-text('{choice}')")
                await page.wait_for_selector(f"{own} .ballot-done")
            receipt = (
                (await phones[0].inner_text(f"{own} .ballot-done")).rsplit("：", 1)[-1].strip()
            )
            assert len(receipt) == 10
            # 赵大 also holds 孙三's proxy: a second ballot, in their name
            assert "孙三" in await phones[0].inner_text(".ballot-for")
            await phones[0].click(".ballot:has(.ballot-for) .ballot-option:has-text('弃权')")
            await phones[0].wait_for_selector(".ballot:has(.ballot-for) .ballot-done")
            # the clerk ticks an in-hall member present, then records their choice by roll call
            await host.click("#hall-roll summary")
            await host.check("#hall-roll-list li:has-text('在场的李四') input")
            await host.wait_for_function(
                "() => document.querySelector('#hall-roll summary').dataset.count.includes('1')"
            )
            await host.click(".roll-call summary")
            row = host.locator(".roll-call-row", has_text="在场的李四")
            await row.locator("select").select_option("同意")
            await row.locator("text=✓").wait_for()
            await host.wait_for_function(
                "() => document.querySelector('.vote-progress').textContent.includes('4')"
            )

            await host.click(".close-vote")
            for page in (host, *phones):
                await page.wait_for_selector(".vote-verdict")
            assert "未通过" in await phones[0].inner_text(
                ".vote-verdict"
            )  # 2 of 4 is not more than half
            assert "会场点名 1" in await phones[0].inner_text(".vote-result")
            await phones[0].reload()  # the receipt survives a reload
            await phones[0].click(".check-receipt")
            await phones[0].wait_for_function(
                "() => document.querySelector('.receipt-check').textContent.length > 0"
            )
            said = await phones[0].inner_text(".receipt-check")
            assert receipt in said and "同意" in said


async def test_a_member_suggests_and_the_committee_answers(server):
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    added = await api.post_json("/api/members", json={"name": "周八"}, headers=headers)
    meeting = await api.post_json(
        "/api/meetings",
        json={"title": "村规民约", "agenda": [{"title": "修订第三条"}]},
        headers=headers,
    )
    async with async_playwright() as pw:
        async with Browser(pw) as phone, Browser(pw) as hall:
            villager = await phone.new_page()
            await villager.goto(added["invite_url"])
            await villager.goto(f"{base}/m/{meeting['code']}")  # not started: suggest ahead
            await villager.wait_for_selector("#suggestion-form:not([hidden])")
            await villager.select_option("#suggestion-item", str(meeting["agenda"][0]["id"]))
            await villager.fill("#suggestion-text", "<i>建议</i>：养狗要拴绳")
            await villager.click("#suggestion-form button")
            await villager.wait_for_selector(".suggestion")

            host = await hall.new_page()
            await clerk_logs_in(host, base, f"/meetings/{meeting['id']}/host")
            await host.wait_for_selector(".suggestion .answer-adopted")
            assert "修订第三条" in await host.inner_text(".suggestion")
            await host.fill(".answer-reply", "采纳，写入第三条")
            await host.click(".suggestion .answer-adopted")
            await villager.wait_for_selector(".suggestion.adopted")
            text = await villager.inner_text(".suggestion")
            assert (
                "<i>建议</i>：养狗要拴绳" in text
                and "采纳，写入第三条" in text
                and "已采纳" in text
            )


async def test_a_removed_member_sees_why_and_can_send_nothing_more(server):
    """The committee takes a member off the roll during the meeting: their phone says so
    at once (session:revoked), in Chinese, and the chat box is closed."""
    base = str(server.make_url("")).rstrip("/")
    _, headers, member, meeting = await member_and_live_meeting(server, "赵六", "村民会议")
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            page = await phone.new_page()
            await page.goto(member["invite_url"])
            await page.goto(f"{base}/m/{meeting['code']}")
            await page.wait_for_selector("#chat-input:not([disabled])", timeout=20_000)
            async with aiohttp.ClientSession() as session:
                async with session.delete(
                    server.make_url(f"/api/members/{member['id']}"), headers=headers
                ) as response:
                    assert response.status == 200
            notice = page.locator("#chat-error")
            await notice.wait_for(state="visible", timeout=20_000)
            assert "登录已失效" in await notice.inner_text()
            assert await page.locator("#chat-input").is_disabled()


async def test_notice_share_text_carries_time_place_link_and_code(server):
    """The text copied for messaging groups says when (village time), where, the link and code."""
    base = str(server.make_url("")).rstrip("/")
    api = ServerClient(server)
    headers = await api.clerk_headers()
    meeting = await api.post_json(
        "/api/meetings",
        json={
            "title": "春耕村民会议",
            "place": "村委会大院",
            "starts_at": "2030-12-06T01:30:00+00:00",  # 09:30 in the village (UTC+8)
            "allow_guests": True,
        },
        headers=headers,
    )
    async with async_playwright() as pw:
        async with Browser(pw) as phone:
            page = await phone.new_page()
            await page.set_viewport_size({"width": 360, "height": 740})
            await page.add_init_script(
                "window.__copied = [];"
                " Object.defineProperty(navigator, 'clipboard', {value: {writeText:"
                " async (text) => { window.__copied.push(text); }}});"
            )
            await page.goto(f"{base}/meetings/{meeting['id']}/notice")
            await page.click("#copy-share")
            await page.wait_for_function("() => window.__copied.length > 0")
            text = await page.evaluate("() => window.__copied[0]")
    assert "春耕村民会议" in text and "会议通知" in text
    assert "2030年12月6日" in text and "09:30" in text, text
    assert "地点：村委会大院" in text, text
    assert f"/m/{meeting['code']}" in text and meeting["join_url"] in text
    assert f"会议号：{meeting['code']}" in text, text
