"""Live HLS in real Chromium: "save data" mode, and browsers where WebRTC cannot play.

The clerk publishes from Chromium's fake camera (H.264, the room's first choice);
the server records it and writes live HLS; a villager's page plays that playlist
with hls.js instead of WebRTC. Runs in the loopback-only namespace (netns).
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from server.keys import MEDIA

from .support.browser import Browser, ServerClient, host_starts_meeting, wait_state

pytestmark = pytest.mark.netns

SAVE_DATA = "localStorage.setItem('cunhui.saveData', '1');"
#: counts the page's peer connections: HLS must not open one
COUNT_PEER_CONNECTIONS = """
window.__peerConnections = 0;
if (window.RTCPeerConnection) {
  const Real = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    window.__peerConnections += 1;
    return new Real(...args);
  };
  window.RTCPeerConnection.prototype = Real.prototype;
}
"""
NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"


async def plays_over_hls(page) -> None:
    """The picture arrives through hls.js (a MediaSource, no WebRTC stream) and time runs."""
    await page.wait_for_function("() => document.body.dataset.mode === 'hls'", timeout=40_000)
    await wait_state(page, "playing", timeout=40_000)
    await page.wait_for_function(
        "() => { const v = document.getElementById('player');"
        " return v.videoWidth > 0 && v.currentTime > 0.5; }",
        timeout=40_000,
    )
    source = await page.evaluate(
        "() => { const v = document.getElementById('player');"
        " return {srcObject: v.srcObject !== null, src: v.currentSrc}; }"
    )
    assert source["srcObject"] is False and source["src"].startswith("blob:"), source
    t0 = await page.evaluate("document.getElementById('player').currentTime")
    await asyncio.sleep(2.5)
    t1 = await page.evaluate("document.getElementById('player').currentTime")
    assert t1 - t0 > 1.0, (t0, t1)


STATUS = "() => document.getElementById('watch-status').textContent"


@pytest.mark.parametrize("why", ["save_data", "no_webrtc"])
async def test_villager_watches_live_over_hls(server, why):
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as host:
            page = await host.new_page()
            meeting_id = await host_starts_meeting(page, base)
            assert server.app[MEDIA].room(str(meeting_id)).video_codec == "video/h264"
            code = (await ServerClient(server).get_json(f"/api/meetings/{meeting_id}"))["code"]
            async with Browser(pw, "--autoplay-policy=no-user-gesture-required") as villager:
                watch = await villager.new_page()
                requested: list[str] = []
                watch.on("request", lambda r: requested.append(r.url))
                parts: list = []  # the recording status as the page got it
                watch.on("response", lambda r: parts.append(r) if "/recording?" in r.url else None)
                await watch.add_init_script(SAVE_DATA if why == "save_data" else NO_WEBRTC)
                await watch.add_init_script(COUNT_PEER_CONNECTIONS)
                await watch.goto(f"{base}/m/{code}")
                await plays_over_hls(watch)
                # WebRTC was never used
                assert await watch.evaluate("window.__peerConnections") == 0
                # hls.js's light build, loaded only now that HLS plays
                vendor = [u for u in requested if "/vendor/hls.js/" in u]
                assert vendor and all("hls.light.min.mjs" in u for u in vendor), vendor
                recording = await parts[-1].json()
                live = [p for p in recording["parts"] if p["status"] == "recording" and p["hls"]]
                part = live[-1]
                renditions = part.get("renditions") or {}
                if why == "no_webrtc":
                    assert await watch.evaluate("document.body.dataset.modeReason") == "fallback"
                    assert await watch.evaluate(STATUS) == "备用线路播放，比会场晚几秒"
                    # the master (it starts low and climbs)
                    assert any(
                        u.split("?")[0].endswith(part["hls"].split("?")[0]) for u in requested
                    )
                    return
                assert await watch.evaluate("document.body.dataset.modeReason") == "save-data"
                assert await watch.evaluate(STATUS) == "省流量：低清画面，比会场晚几秒"
                # the low rendition where the node makes one (else the master, pinned low)
                wanted = (renditions.get("low") or part["hls"]).split("?")[0]
                assert any(u.split("?")[0].endswith(wanted) for u in requested), (wanted, requested)
                if renditions.get("full"):
                    full = renditions["full"].split("?")[0]
                    assert not any(u.split("?")[0].endswith(full) for u in requested)

                # save data with 只听声音: the sound only, over WebRTC
                assert await watch.get_attribute("#save-data", "aria-pressed") == "true"
                await watch.click("#audio-only")
                await watch.wait_for_function(
                    "() => document.body.dataset.mode === 'audio'"
                    " && document.body.dataset.state === 'playing'",
                    timeout=20_000,
                )
                assert await watch.evaluate("document.body.dataset.modeReason") == "save-data"
                assert await watch.evaluate(STATUS) == "省流量：只听声音"
                assert await watch.evaluate("window.__peerConnections") == 1

                # save data off, sound only off: the picture over WebRTC again
                await watch.click("#save-data")
                await watch.click("#audio-only")
                await watch.wait_for_function(
                    "() => document.body.dataset.mode === 'video'"
                    " && document.body.dataset.state === 'playing'",
                    timeout=20_000,
                )
                await watch.wait_for_function(
                    "() => document.getElementById('player').srcObject !== null", timeout=20_000
                )
                assert await watch.evaluate(STATUS) == "直播中"


async def test_sound_only_over_hls_loads_the_audio_playlist(server):
    """No WebRTC and 只听声音 pressed: the AAC-only playlist, and the box says 只听声音."""
    base = str(server.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        async with Browser(pw) as host:
            page = await host.new_page()
            meeting_id = await host_starts_meeting(page, base)
            code = (await ServerClient(server).get_json(f"/api/meetings/{meeting_id}"))["code"]
            async with Browser(pw, "--autoplay-policy=no-user-gesture-required") as villager:
                watch = await villager.new_page()
                requested: list[str] = []
                watch.on("request", lambda r: requested.append(r.url))
                parts: list = []
                watch.on("response", lambda r: parts.append(r) if "/recording?" in r.url else None)
                await watch.add_init_script(
                    NO_WEBRTC + "localStorage.setItem('cunhui.audioOnly', '1');"
                )
                await watch.goto(f"{base}/m/{code}")
                await wait_state(watch, "playing", timeout=40_000)
                assert await watch.evaluate("document.body.dataset.mode") == "hls"
                await watch.wait_for_function(
                    "() => document.getElementById('player').currentTime > 0.5", timeout=40_000
                )
                t0 = await watch.evaluate("document.getElementById('player').currentTime")
                await asyncio.sleep(2.5)
                t1 = await watch.evaluate("document.getElementById('player').currentTime")
                assert t1 - t0 > 1.0, (t0, t1)
                recording = await parts[-1].json()
                part = [p for p in recording["parts"] if p["status"] == "recording"][-1]
                audio = (part.get("renditions") or {}).get("audio")
                if audio:
                    assert any(u.split("?")[0].endswith(audio.split("?")[0]) for u in requested)
                    # no picture asked for
                    assert await watch.evaluate("document.getElementById('player').videoWidth") == 0
                assert await watch.is_visible("#audio-box")
                assert await watch.evaluate(STATUS) == "备用线路只听声音，比会场晚几秒"
                assert await watch.get_attribute("#audio-only", "aria-pressed") == "true"
