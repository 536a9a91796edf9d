"""The host's network drops, and comes back: the meeting carries on by itself (issue 16, 1).

A real link cut: the server runs in one network namespace, the host's Chromium (360×740,
zh-CN, fake camera) in another, joined by a veth pair (tests/support/netlink.py). The
host's end goes down for 2, 10 and 30 s, then its address changes (Wi-Fi to 4G). Each
time the host page publishes again without a click, two WHEP viewers (aiortc, the
server's side of the link) keep their sessions and get pictures again within moments of
the link's return, and the floor speaker keeps the floor and is heard throughout. A
watch page (Chromium, the server's side) says "主持人网络中断，正在重连…" while the host
is away and not after. With a 5 s HOST_AWAY_GRACE the committee is asked whether to end
the meeting, and nothing ends. Finally the host page is reloaded mid-meeting: it
publishes again by itself (the camera was allowed, this device was publishing).

Figures (time to republish, viewers' resume after the link's return) are printed.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from playwright.async_api import async_playwright

from media import install_aiortc_patches

from .support.api import PASSWORD, auth, server_env
from .support.browser import clerk_logs_in, require_browser_sandbox, wait_state
from .support.floor import VIEWER, Listener, Speaker
from .support.netlink import (
    LinkedNamespaces,
    NamespacedServer,
    NamespaceLoop,
    chromium_in,
    require_namespaces,
    secure_origin,
    setup_meeting,
)
from .support.processes import Remote, run_cli
from .support.realtime import Recorder

pytestmark = pytest.mark.netns

SMALL_PHONE = {"width": 360, "height": 740}
AWAY_TEXT = "主持人网络中断，正在重连"
#: the committee's prompt with HOST_AWAY_GRACE=5
ASKED = "主持人已断线超过 5 秒。结束会议吗？"
BANNER_SHOWN = """t => {
  const banner = document.getElementById('host-away-banner');
  return Boolean(banner) && !banner.hidden && banner.textContent.includes(t);
}"""
BANNER_GONE = """() => {
  const banner = document.getElementById('host-away-banner');
  return Boolean(banner) && banner.hidden;
}"""
#: the viewers' m-lines: the hall's audio, its video, the floor speaker's voice
AUDIO, VIDEO, FLOOR = 0, 1, 2
#: generous bound for a busy machine: the figures printed are what counts (0.6-4.4 s
#: here; the slowest path, when the page's own check misses an address change and the
#: server's host:away makes it publish again, took 11 s twice in ~15 runs)
RESUME_BOUND = 15.0


class Events:
    """A recording socket.io client's events from a mark on."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.start = 0

    def mark(self) -> None:
        self.start = len(self.recorder.events)

    def names(self) -> list[str]:
        return [name for name, _ in self.recorder.events[self.start :]]

    async def wait_for(self, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, data in self.recorder.events[self.start :]:
                if event == name:
                    return data
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name} within {timeout} s; got {self.names()}")


async def resumed(viewers: list[Listener], moment: float, timeout: float) -> float:
    """Seconds from ``moment`` until every viewer plays again: its 10th video frame since."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tenth = []
        for viewer in viewers:
            after = [arrived for arrived, _ in viewer.arrivals[VIDEO] if arrived > moment]
            tenth.append(after[9] if len(after) >= 10 else None)
        if all(t is not None for t in tenth):
            return max(t for t in tenth if t is not None) - moment
        await asyncio.sleep(0.05)
    counts = [sum(1 for a, _ in v.arrivals[VIDEO] if a > moment) for v in viewers]
    raise AssertionError(f"viewers got {counts} video frames in {timeout} s after the return")


async def test_the_host_drops_and_comes_back_by_itself(tmp_path):
    require_browser_sandbox()
    require_namespaces()
    install_aiortc_patches()
    test_started = time.monotonic()
    env = {
        **server_env(tmp_path),
        "ICE_HOST_ADDRESSES": LinkedNamespaces.NEAR_ADDRESS,
        "HOST_AWAY_GRACE": "5",
        "RECORD_MEETINGS": "0",  # the recording is another test's business: spare the CPU
    }
    created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    figures: dict[str, dict[str, float]] = {}
    with LinkedNamespaces() as link, NamespaceLoop(link.near) as near:
        server = NamespacedServer(env, link.near, link.NEAR_ADDRESS, tmp_path / "server.log")
        server.launch()
        peers: list = []
        clerk = None
        http = None
        try:
            await near.run(server.wait_ready())
            base = server.url
            member, meeting, token = await near.run(setup_meeting(base))
            meeting_id = meeting["id"]

            async def prepare():
                session = aiohttp.ClientSession()
                remote = Remote(session, base)
                clerk = Recorder()
                await clerk.connect(remote, token)
                assert (await clerk.call("join", {"meeting_id": meeting_id}))["ok"]
                # the floor speaker: a member on the server's side of the link
                async with session.post(
                    base + "/api/join", json={"invite": member["invite"]}
                ) as response:
                    assert response.status == 200, await response.text()
                    speaker_token = (await response.json())["token"]
                granted = await clerk.call("floor:grant", {"participant_id": f"m{member['id']}"})
                assert granted["ok"], granted
                async with session.post(
                    base + "/api/members", json={"name": "看直播的王五"}, headers=auth(token)
                ) as response:
                    watcher = await response.json()
                return session, remote, clerk, speaker_token, watcher

            http, remote, clerk, speaker_token, watcher = await near.run(prepare())
            events = Events(clerk)

            async with async_playwright() as pw:
                async with (
                    # the camera wants a secure origin: the server's address counts as one
                    chromium_in(
                        pw,
                        link.far,
                        SMALL_PHONE,
                        secure_origin(base),
                    ) as host_browser,
                    chromium_in(pw, link.near, SMALL_PHONE) as watch_browser,
                ):
                    await host_browser.grant_permissions(["camera", "microphone"], origin=base)
                    host = await host_browser.new_page()
                    errors: list = []
                    host.on("pageerror", lambda e: errors.append(e))
                    host_path = f"/meetings/{meeting_id}/host"
                    await clerk_logs_in(host, base, host_path)
                    await host.click("#start-button")  # 继续直播: the first time, a click
                    await wait_state(host, "live", 30_000)

                    async def watchers():
                        speaker = Speaker()
                        await speaker.publish(remote, meeting_id, speaker_token)
                        viewers = [Listener(VIEWER), Listener(VIEWER)]
                        for viewer in viewers:
                            await viewer.watch(remote, meeting_id)
                        return speaker, viewers

                    speaker, viewers = await near.run(watchers())
                    peers = [speaker, *viewers]
                    deadline = time.monotonic() + 30
                    while any(v.frames[VIDEO] < 20 or v.frames[FLOOR] < 20 for v in viewers):
                        assert time.monotonic() < deadline, [v.frames for v in viewers]
                        await asyncio.sleep(0.1)

                    watch = await watch_browser.new_page()
                    watch.on("pageerror", lambda e: errors.append(e))
                    invite = watcher["invite_url"].rsplit("/i/", 1)[1]
                    await watch.goto(f"{base}/i/{invite}")
                    await watch.goto(f"{base}/m/{meeting['code']}")
                    await watch.wait_for_function(BANNER_GONE, timeout=30_000)
                    # the committee's other device (a second clerk's phone on the host page)
                    committee = await watch_browser.new_page()
                    committee.on("pageerror", lambda e: errors.append(e))
                    await clerk_logs_in(committee, base, host_path)
                    await committee.wait_for_function(BANNER_GONE, timeout=30_000)
                    print(f"\nset up in {time.monotonic() - test_started:.1f} s")

                    async def drop(name: str, seconds: float | None) -> None:
                        """Cut the host's link for ``seconds`` (None: change its address)."""
                        events.mark()
                        floor_before = [v.frames[FLOOR] for v in viewers]
                        if seconds is None:
                            link.move_far("10.213.15.2")
                            back = time.monotonic()
                        else:
                            link.cut()
                            cut_at = time.monotonic()
                            # every phone says so (a 2 s cut may be over before the server sees it)
                            if seconds >= 10:
                                await watch.wait_for_function(
                                    BANNER_SHOWN, arg=AWAY_TEXT, timeout=seconds * 1000
                                )
                                shown = time.monotonic() - cut_at
                                await near.run(events.wait_for("host:away", 1))
                                figures.setdefault(name, {})["banner_after_cut_s"] = shown
                            if seconds >= 10:
                                # HOST_AWAY_GRACE=5: the committee is asked; nothing ends
                                asked = await near.run(events.wait_for("host:away_long", 10))
                                assert asked["since"]
                                prompt = committee.locator("#host-away-prompt")
                                await prompt.wait_for(state="visible", timeout=10_000)
                                assert ASKED in await prompt.inner_text()
                                await committee.click("#host-away-wait")  # 继续等待
                                await prompt.wait_for(state="hidden")
                            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - cut_at)))
                            link.restore()
                            back = time.monotonic()
                        took = await resumed(viewers, back, 30)
                        await wait_state(host, "live", 30_000)
                        republished = time.monotonic() - back
                        await watch.wait_for_function(BANNER_GONE, timeout=30_000)
                        await committee.locator("#host-away-prompt").wait_for(state="hidden")
                        figures.setdefault(name, {}).update(
                            viewers_resume_s=took, host_live_again_s=republished
                        )
                        print(
                            f"{name}: viewers' pictures again {took:.2f} s after the link "
                            f"returned; host page live again after {republished:.2f} s"
                        )
                        assert took < RESUME_BOUND, (name, took)
                        # the same WHEP sessions, and the floor speaker heard throughout
                        for viewer in viewers:
                            assert viewer.pc.connectionState == "connected"
                        assert all(
                            v.frames[FLOOR] > before + 20
                            for v, before in zip(viewers, floor_before, strict=True)
                        ), name
                        assert "floor:changed" not in events.names(), events.names()
                        if seconds is not None and seconds >= 10:
                            assert "host:back" in events.names(), events.names()

                    await drop("cut 2 s", 2)
                    await drop("cut 10 s", 10)
                    await drop("cut 30 s", 30)
                    await drop("address change", None)

                    # nothing ended by itself; the floor speaker still holds the floor
                    async def room_state():
                        async with http.get(
                            f"{base}/api/meetings/{meeting_id}", headers=auth(token)
                        ) as response:
                            return await response.json()

                    state = await near.run(room_state())
                    assert state["status"] == "live", state

                    # the host page is reloaded: it publishes again without a click
                    events.mark()
                    reloaded = time.monotonic()
                    await host.reload()
                    await wait_state(host, "live", 30_000)
                    took = await resumed(viewers, reloaded, 30)
                    figures["reload"] = {
                        "host_live_again_s": time.monotonic() - reloaded,
                        "viewers_resume_s": took,
                    }
                    print(f"reload: viewers' pictures again {took:.2f} s after the reload")
                    assert "host:away" not in events.names()  # a reload is no lost connection
                    assert not errors, errors
        finally:
            if clerk is not None:
                await near.run(clerk.close())
            for peer in peers:
                await near.run(peer.close())
            if http is not None:
                await near.run(http.close())
            server.stop()
    print(f"figures: {figures}")
    print(f"test took {time.monotonic() - test_started:.1f} s")
