"""The server is killed mid-meeting and started again: the host page publishes again by itself.

Issue 16, failure 3, with the real pages: the server runs in one network namespace; the
committee's host page (Chromium, 360×740, zh-CN, fake camera) publishes from another,
across a veth pair; a watch page on plain HTTP (no TLS, as some villages deploy it:
Chromium then offers no ICE candidates and connects by peer-reflexive ones) plays the
picture over WebRTC. The server is killed (``kill -9``) and started again on the same
database and folders, as a supervisor would. Without a click, the host page's socket
rejoins, the room says nobody is publishing, and the page publishes again: the server's
media counters say so, a new viewer gets pictures and the watch page plays again. The
seconds from the server being ready (and from the kill) are printed; the bounds asserted
are loose (a busy machine).

Also (no browser, node): ``hasUsableCandidate`` and ``restartUnlessUnderway`` of
web/static/lib/webrtc-http.js.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright

from .support.api import PASSWORD, auth, server_env
from .support.browser import clerk_logs_in, require_browser_sandbox, wait_state
from .support.netlink import (
    LinkedNamespaces,
    NamespacedServer,
    NamespaceLoop,
    chromium_in,
    require_namespaces,
    secure_origin,
    setup_meeting,
)
from .support.peers import Viewer
from .support.processes import Remote, run_cli

SMALL_PHONE = {"width": 360, "height": 740}
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
#: loose bounds for a busy 2-core machine (the real figures are printed; the aim is the
#: host publishing within 10 s of the kill on a quiet one)
REPUBLISH_BOUND = 25.0
WATCH_BOUND = 30.0
#: the watch page plays the WebRTC picture (not the HLS fallback)
WEBRTC = "() => document.body.dataset.mode === 'video' && document.body.dataset.state === 'playing'"
FRAMES = (
    "() => document.getElementById('player')?.getVideoPlaybackQuality?.().totalVideoFrames ?? 0"
)

WEBRTC_HTTP_JS = Path(__file__).resolve().parent.parent / "web/static/lib/webrtc-http.js"


async def _publishing(base: str, meeting_id: int, token: str) -> bool:
    """(In the server's namespace.) The server's media counters say someone publishes."""
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{base}/api/meetings/{meeting_id}/media", headers=auth(token)
            ) as response:
                return response.status == 200 and bool((await response.json()).get("publishing"))
    except (aiohttp.ClientError, OSError):
        return False


async def _viewer_gets_pictures(base: str, meeting_id: int) -> Viewer:
    """(In the server's namespace.) A new WHEP viewer (aiortc) that got 10 video frames."""
    viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        await viewer.watch(Remote(http, base), meeting_id)
    try:
        await viewer.wait_for(video=10, timeout=20)
    except AssertionError:
        await viewer.close()
        raise
    return viewer


@pytest.mark.netns
async def test_the_host_page_publishes_again_after_kill_minus_nine(tmp_path):
    require_browser_sandbox()
    require_namespaces()
    test_started = time.monotonic()
    env = {
        **server_env(tmp_path),
        "ICE_HOST_ADDRESSES": LinkedNamespaces.NEAR_ADDRESS,
        "RECORD_MEETINGS": "0",  # the recording after a restart is tests/test_restart.py's
    }
    created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    viewers: list[Viewer] = []
    with LinkedNamespaces() as link, NamespaceLoop(link.near) as near:
        server = NamespacedServer(env, link.near, link.NEAR_ADDRESS, tmp_path / "server.log")
        server.launch()
        try:
            await near.run(server.wait_ready())
            base = server.url
            member, meeting, token = await near.run(setup_meeting(base))
            meeting_id = meeting["id"]
            async with async_playwright() as pw:
                async with (
                    # the camera wants a secure origin: the server's address counts as one
                    chromium_in(
                        pw,
                        link.far,
                        SMALL_PHONE,
                        secure_origin(base),
                    ) as host_browser,
                    # the watch page stays plain HTTP
                    chromium_in(pw, link.near, SMALL_PHONE, AUTOPLAY) as watch_browser,
                ):
                    await host_browser.grant_permissions(["camera", "microphone"], origin=base)
                    errors: list = []
                    host = await host_browser.new_page()
                    host.on("pageerror", lambda e: errors.append(e))
                    await clerk_logs_in(host, base, f"/meetings/{meeting_id}/host")
                    await host.click("#start-button")  # 继续直播: the first time, a click
                    await wait_state(host, "live", 30_000)
                    watch = await watch_browser.new_page()
                    watch.on("pageerror", lambda e: errors.append(e))
                    await watch.goto(base + "/i/" + member["invite_url"].rsplit("/i/", 1)[1])
                    await watch.goto(f"{base}/m/{meeting['code']}")
                    await watch.wait_for_function(WEBRTC, timeout=30_000)
                    assert await near.run(_publishing(base, meeting_id, token))
                    print(f"\nset up in {time.monotonic() - test_started:.1f} s")

                    killed = time.monotonic()
                    server.kill()
                    server.launch()  # as a supervisor would: same database and folders
                    await near.run(server.wait_ready())
                    ready = time.monotonic()
                    back = None
                    while time.monotonic() - ready < REPUBLISH_BOUND:
                        if await near.run(_publishing(base, meeting_id, token)):
                            back = time.monotonic()
                            break
                        await asyncio.sleep(0.1)
                    assert back is not None, (
                        f"the host page did not publish again within {REPUBLISH_BOUND} s "
                        "of the restarted server being ready"
                    )
                    print(
                        f"kill -9: server ready again {ready - killed:.1f} s after the kill; "
                        f"the host page publishing again {back - ready:.1f} s after ready, "
                        f"{back - killed:.1f} s after the kill"
                    )
                    # by itself: the page says it is live, a new viewer sees the pictures
                    await wait_state(host, "live", 20_000)
                    assert await host.locator("#start-button").is_hidden()  # nothing to press
                    viewers.append(await near.run(_viewer_gets_pictures(base, meeting_id)))
                    # and the watch page (plain HTTP) plays again without a reload
                    frames = await watch.evaluate(FRAMES)
                    await watch.wait_for_function(
                        f"n => ({FRAMES})() > n + 10", arg=frames, timeout=WATCH_BOUND * 1000
                    )
                    await watch.wait_for_function(WEBRTC, timeout=10_000)
                    playing = time.monotonic()
                    print(
                        f"the watch page plays again {playing - ready:.1f} s after ready, "
                        f"{playing - killed:.1f} s after the kill"
                    )
                    assert not errors, errors
        finally:
            for viewer in viewers:
                await near.run(viewer.close())
            server.stop()
    print(f"test took {time.monotonic() - test_started:.1f} s")


#: hasUsableCandidate's answers, and restartUnlessUnderway's, from the module itself
CHECK_JS = """
const { hasUsableCandidate, HttpPeerSession } = await import(process.argv[1]);
const offer = (...addresses) => ["v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  ...addresses.map((a, i) => `a=candidate:${i} 1 udp 2122260223 ${a} 5000${i} typ host`), ""]
  .join("\\r\\n");
const usable = {
  lan: hasUsableCandidate(offer("192.168.1.20"), "village.example", true),
  mdns: hasUsableCandidate(offer("0f3c1d2e-aaaa.local"), "village.example", true),
  loopback_only: hasUsableCandidate(offer("127.0.0.1", "::1"), "village.example", true),
  loopback_and_lan: hasUsableCandidate(offer("127.0.0.1", "10.0.0.7"), "village.example", true),
  loopback_on_loopback_page: hasUsableCandidate(offer("127.0.0.1"), "127.0.0.1", true),
  none_online: hasUsableCandidate(offer(), "village.example", true),
  none_offline: hasUsableCandidate(offer(), "village.example", false),
  loopback_only_offline: hasUsableCandidate(offer("127.0.0.1"), "village.example", false),
};
// an attempt under way: how restartUnlessUnderway treats it
const session = new HttpPeerSession("/whip/1", {});
let restarts = 0;
session.restart = () => { restarts += 1; };
const now = Date.now();
const kept = (pc, answeredAt, since, attempt = true) => {
  session._generation = 7;
  session._attempt = attempt ? 7 : 6;
  session.pc = pc;
  session._answeredAt = answeredAt;
  const before = restarts;
  const answer = session.restartUnlessUnderway({ since, patience: 2500 });
  if (answer !== restarts > before) throw new Error("restartUnlessUnderway says otherwise");
  return !answer;
};
const connecting = { connectionState: "connecting" };
const underway = {
  not_answered_yet: kept(connecting, null, now),
  answered_since: kept(connecting, now - 100, now - 1000),
  answered_moments_ago: kept(connecting, now - 1000, now),
  answered_long_before: kept(connecting, now - 6000, now),
  connected: kept({ connectionState: "connected" }, now - 100, now - 1000),
  lost_no_attempt: kept({ connectionState: "disconnected" }, now - 100, now - 1000, false),
  no_connection: kept(null, null, now, false),
};
console.log(JSON.stringify({ usable, underway }));
"""


def test_which_offers_are_sent_and_which_attempts_are_left_to_finish():
    """An offer with no candidates at all is sent while online (plain-HTTP Chromium);
    loopback-only is not (unless the page is on loopback); an attempt that may still
    connect is not aborted by a restart from the room's state."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("SKIPPED LOUDLY: node is needed to check web/static/lib/webrtc-http.js")
    ran = subprocess.run(
        [node, "--input-type=module", "-e", CHECK_JS, WEBRTC_HTTP_JS.as_uri()],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert shown["usable"] == {
        "lan": True,
        "mdns": True,
        "loopback_only": False,
        "loopback_and_lan": True,
        "loopback_on_loopback_page": True,
        "none_online": True,
        "none_offline": False,
        "loopback_only_offline": False,
    }
    assert shown["underway"] == {
        "not_answered_yet": True,
        "answered_since": True,
        "answered_moments_ago": True,
        "answered_long_before": False,
        "connected": False,
        "lost_no_attempt": False,
        "no_connection": False,
    }
