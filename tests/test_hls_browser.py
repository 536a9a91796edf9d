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
    assert await page.is_visible("#play-mode")


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
                await watch.add_init_script(SAVE_DATA if why == "save_data" else NO_WEBRTC)
                await watch.add_init_script(COUNT_PEER_CONNECTIONS)
                await watch.goto(f"{base}/m/{code}")
                await plays_over_hls(watch)
                # WebRTC was never used
                assert await watch.evaluate("window.__peerConnections") == 0
                if why == "save_data":
                    # turning save data off goes back to WebRTC
                    assert await watch.get_attribute("#save-data", "aria-pressed") == "true"
                    await watch.click("#save-data")
                    await wait_state(watch, "playing", timeout=20_000)
                    await watch.wait_for_function(
                        "() => document.getElementById('player').srcObject !== null", timeout=20_000
                    )
                    assert await watch.is_hidden("#play-mode")
