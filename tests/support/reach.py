"""A member's phone on a weak link, measured: shared by tests/test_reach_browser.py and
scripts/bench_reach.py (issue 15, "Reach").

``ReachRig`` puts the server (``python -m server serve``) and a WHIP publisher (the
bench's worker, ``scripts/bench/publisher.py``: 720p H.264 pinned at ``bitrate``, x264
"ultrafast", and Opus of a voice-like signal) in ``near``, the committee's
python-socketio client in ``near`` too, and Chromium (360×740, zh-CN) in ``far``,
across a :class:`ShapedLink`. The publisher is on the server's side of the link,
unshaped, as a hall's camera is.

In the phone, ``SAMPLER`` (an init script) wraps ``RTCPeerConnection`` and every 250 ms
adds up what all of the page's peer connections received (``getStats``: inbound-rtp
audio and video, transport), as counters that never go back when the page replaces a
connection, with ``t`` in ms since navigation start. ``Phone`` reads that series and
works out the figures: first sound, first picture, when the mode changed, concealment
over a window, frames per second, bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.bench.common import REPO, Children, Worker, child_env

from .api import PASSWORD, server_env
from .netlink import NamespacedServer, NamespaceLoop, chromium_in, setup_meeting
from .processes import run_cli
from .realtime import Recorder
from .shaped import Profile, ShapedLink

SMALL_PHONE = {"width": 360, "height": 740}
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
#: the meeting's camera: what the issue says "Save data" sent today (~550 kbit/s) and more
PUBLISH = {"codec": "video/H264", "width": 1280, "height": 720, "fps": 30, "bitrate": 600_000}

#: added to every page the phone opens: the receive figures of all its peer connections
SAMPLER = (Path(__file__).parent / "reach_sampler.js").read_text()

#: click a ballot option (confirmed) and wait for its acknowledgement: ms, or null
CAST_BALLOT = """async ([choice, ceiling]) => {
  window.confirm = () => true;
  const option = [...document.querySelectorAll(".ballot .ballot-option")]
    .find((b) => b.textContent.trim() === choice);
  if (!option) return null;
  const start = performance.now();
  option.click();
  while (performance.now() - start < ceiling) {
    if (document.querySelector(".ballot .ballot-done")) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}"""

#: type a chat line and send it: the wall clock (ms) of the tap
SEND_CHAT = """(text) => {
  const input = document.getElementById("chat-input");
  input.value = text;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  const at = Date.now();
  document.querySelector("#chat-form button[type=submit], #chat-form button").click();
  return at;
}"""

#: what a line saying "audio only because the network is weak" has in it
SAYS_WORDS = ("网络", "只听声音")

#: visible elements whose text has one of the words (a banner saying what happens)
VISIBLE_WITH = """(words) => [...document.body.querySelectorAll("*")]
  .filter((n) => n instanceof HTMLElement && n.childElementCount < 3)
  .filter((n) => n.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }))
  .filter((n) => { const r = n.getBoundingClientRect();
                   return r.width > 1 && r.height > 1 && r.bottom > 0 && r.top < innerHeight; })
  .map((n) => n.innerText.replace(/\\s+/g, " ").trim())
  .filter((text) => words.some((w) => text.includes(w)))"""


class Url:
    """What Recorder.connect needs of a client."""

    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> str:
        return self.base + path


class TimedRecorder(Recorder):
    """A Recorder that also notes the wall clock at which each event arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[str, dict, float]] = []

        @self.sio.on("*")
        async def catch_all(event, data):
            self.events.append((event, data))
            self.arrived.append((event, data, time.time()))

    async def arrival(self, event: str, predicate, timeout: float) -> float | None:
        """The wall clock at which a matching ``event`` arrived (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, data, at in self.arrived:
                if name == event and predicate(data):
                    return at
            await asyncio.sleep(0.01)
        return None


def window(series: list[dict], start: float, end: float | None = None) -> dict:
    """What grew between ``start`` and ``end`` (ms since navigation), and over how long (s)."""
    inside = [s for s in series if s["t"] >= start and (end is None or s["t"] <= end)]
    if len(inside) < 2:
        return {"seconds": 0.0}
    first, last = inside[0], inside[-1]
    grown = {k: last[k] - first[k] for k in first if "." in k}
    grown["seconds"] = (last["t"] - first["t"]) / 1000
    return grown


def bytes_sent(netns: str, dev: str) -> int:
    """Bytes ``dev`` in ``netns`` has sent (its interface counter: everything, shaped or not)."""
    shown = subprocess.run(
        ["ip", "-n", netns, "-s", "-j", "link", "show", "dev", dev],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    return int(json.loads(shown)[0]["stats64"]["tx"]["bytes"])


def sound_resumed(series: list[dict], after: float) -> float:
    """The first moment at or after ``after`` (ms) from which audio samples grow again."""
    key = "audio.totalSamplesReceived"
    for before, now in zip(series, series[1:], strict=False):
        if before["t"] >= after and now[key] > before[key]:
            return before["t"]
    return after


def concealment(grown: dict) -> float | None:
    samples = grown.get("audio.totalSamplesReceived", 0)
    return grown.get("audio.concealedSamples", 0) / samples if samples else None


def frame_rate(grown: dict) -> float | None:
    return grown.get("video.framesDecoded", 0) / grown["seconds"] if grown["seconds"] else None


@dataclass
class Phone:
    """The member's watch page in Chromium in ``far``."""

    page: Any  # a Playwright Page
    errors: list = field(default_factory=list)

    async def reach(self) -> dict:
        return await self.page.evaluate("() => window.__reach")

    async def now(self) -> float:
        """ms since the page's navigation start."""
        return await self.page.evaluate("() => performance.now()")

    async def until(self, check, what: str, timeout: float) -> dict:
        """Poll ``check(reach)`` (every 0.5 s) until true: the figures then."""
        deadline = time.monotonic() + timeout
        while True:
            figures = await self.reach()
            if check(figures):
                return figures
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:.0f} s: {what}; {self.describe(figures)}")
            await asyncio.sleep(0.5)

    @staticmethod
    def describe(figures: dict) -> str:
        last = figures["series"][-1] if figures.get("series") else {}
        keep = ("t", "state", "mode", "reason", "fps", "audio.totalSamplesReceived",
                "audio.concealedSamples", "video.framesDecoded",
                "transport.bytesReceived")  # fmt: skip
        return (
            f"{figures.get('pcs')} peer connections; modes {figures.get('modes')}; "
            f"first sound {figures.get('firstSoundAt')} ms; last sample "
            + str({k: last.get(k) for k in keep})
        )

    async def mode(self) -> dict:
        return await self.page.evaluate(
            "() => ({mode: document.body.dataset.mode ?? null,"
            " reason: document.body.dataset.modeReason ?? null,"
            " state: document.body.dataset.state ?? null})"
        )

    async def visible_with(self, *words: str) -> list[str]:
        return await self.page.evaluate(VISIBLE_WITH, list(words))

    async def cast_ballot(self, choice: str, ceiling_s: float) -> float | None:
        """Tap ``choice`` (confirming): seconds until the page shows the ballot taken."""
        await self.page.locator(".ballot .ballot-option").first.wait_for(timeout=ceiling_s * 1000)
        ms = await self.page.evaluate(CAST_BALLOT, [choice, ceiling_s * 1000])
        return None if ms is None else ms / 1000

    async def send_chat(self, text: str) -> float:
        """Type and send a chat line: the wall clock (s) of the tap."""
        return (await self.page.evaluate(SEND_CHAT, text)) / 1000


class ReachRig:
    """Server and publisher in ``near``, the committee's socket.io client, a live meeting.

    ``async with ReachRig(tmp, profile) as rig:`` then ``async with rig.phone(pw) as phone``.
    """

    def __init__(self, folder: Path, profile: Profile | None, *, bitrate: int | None = None):
        self.folder = folder
        self.link = ShapedLink(profile)
        self.publish = {**PUBLISH, **({"bitrate": bitrate} if bitrate else {})}
        self.children = Children()
        self.publisher: Worker | None = None
        self.clerk: TimedRecorder | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> ReachRig:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        env = {**server_env(self.folder), "ICE_HOST_ADDRESSES": ShapedLink.NEAR_ADDRESS}
        env["PATH"] = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
        assert created.returncode == 0, created.stderr
        self._stack.enter_context(self.link)
        self.near = self._stack.enter_context(NamespaceLoop(self.link.near))
        self.server = NamespacedServer(env, self.link.near, self.link.NEAR_ADDRESS,
                                       self.folder / "server.log")  # fmt: skip
        self.server.launch()
        self._stack.callback(self.server.stop)
        await self.near.run(self.server.wait_ready())
        self.base = self.server.url
        self.member, self.meeting, self.token = await self.near.run(setup_meeting(self.base))
        self.clerk = await self.near.run(self._joined(self.token))
        self.publisher = await self.near.run(self._publish())

    async def _joined(self, token: str) -> TimedRecorder:
        person = TimedRecorder()
        await person.connect(Url(self.base), token)
        ack = await person.call("join", {"meeting_id": self.meeting["id"]})
        assert ack["ok"], ack
        return person

    async def _publish(self) -> Worker:
        """The bench's publisher worker (speaking: scripts/bench_reach.py), started in
        ``near`` (its own process: its own core)."""
        log = self.folder / "publisher.log"
        with open(log, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", self.link.near, sys.executable,
                str(REPO / "scripts" / "bench_reach.py"), "--worker", "publisher",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                start_new_session=True, env=child_env(), limit=2**24,
            )  # fmt: skip
        self.children.started(proc.pid)
        worker = Worker("publisher", proc, log)
        await worker.call(
            "publish", timeout=90, base=self.base, meeting=str(self.meeting["id"]),
            token=self.token, x264_preset="ultrafast", **self.publish,
        )  # fmt: skip
        return worker

    async def __aexit__(self, *exc_info) -> None:
        if self.publisher is not None:
            publisher, self.publisher = self.publisher, None
            with contextlib.suppress(Exception):
                await self.near.run(publisher.stop(self.children))
        self.children.kill_all()
        if self.clerk is not None:
            clerk, self.clerk = self.clerk, None
            with contextlib.suppress(Exception):
                await self.near.run(clerk.close())
        await self._stack.aclose()

    @contextlib.asynccontextmanager
    async def phone(self, playwright):
        """The member signed in (by their invite) in Chromium in ``far``: a :class:`Phone`."""
        async with chromium_in(playwright, self.link.far, SMALL_PHONE, AUTOPLAY) as context:
            await context.add_init_script(SAMPLER)
            page = await context.new_page()
            phone = Phone(page)
            page.on("pageerror", lambda e: phone.errors.append(str(e)))
            invite = self.member["invite_url"].rsplit("/i/", 1)[1]
            await page.goto(f"{self.base}/i/{invite}", timeout=60_000)
            yield phone

    async def open_watch(self, phone: Phone) -> None:
        """Navigate to the watch page (``t`` 0 of the phone's figures is this navigation)."""
        await phone.page.goto(
            f"{self.base}/m/{self.meeting['code']}", wait_until="commit", timeout=60_000
        )

    async def open_vote(self, question: str) -> int:
        assert self.clerk is not None
        ack = await self.near.run(self.clerk.call("vote:open", {"question": question}))
        assert ack["ok"], ack
        return ack["vote_id"]

    async def close_vote(self, vote_id: int) -> None:
        assert self.clerk is not None
        await self.near.run(self.clerk.call("vote:close", {"vote_id": vote_id}))

    async def chat_delay(self, phone: Phone, text: str, ceiling_s: float) -> float | None:
        """The member sends ``text``: seconds until the committee's client got it."""
        assert self.clerk is not None
        clerk = self.clerk
        tapped = await phone.send_chat(text)
        arrived = await self.near.run(
            clerk.arrival("chat:message", lambda m: m.get("text") == text, ceiling_s)
        )
        return None if arrived is None else arrived - tapped


async def run_profile(
    rig: ReachRig,
    phone: Phone,
    *,
    wait_for_audio: bool,
    window_s: float = 20.0,
    switch_ceiling_s: float = 60.0,
    first_sound_ceiling_s: float = 30.0,
    chat_ceiling_s: float = 10.0,
    ballot_ceiling_s: float = 15.0,
) -> dict:
    """Open the watch page and measure it: the figures the issue asks for, as a dict.

    First sound and first picture are counted from the navigation's start. With
    ``wait_for_audio`` the window starts once the page has gone to audio only (it waits
    up to ``switch_ceiling_s``), otherwise once sound has started; in the window the
    member sends a chat line and casts a ballot. A figure that never came is None;
    ``problems`` says what did not happen.
    """
    problems: list[str] = []
    said: list[str] = []
    link_before, wall_before = rig.link.counters(), time.monotonic()
    sent_before = bytes_sent(rig.link.near, "v-near")
    await rig.open_watch(phone)
    heard = None
    with contextlib.suppress(AssertionError):
        heard = await phone.until(
            lambda r: r.get("firstSoundAt") is not None, "no sound", first_sound_ceiling_s
        )
    if heard is None:
        problems.append(f"no sound within {first_sound_ceiling_s:.0f} s")
    start = heard["firstSoundAt"] if heard else await phone.now()
    if wait_for_audio:
        if heard is None:  # nothing plays at all: do not wait as long for the switch
            switch_ceiling_s = min(switch_ceiling_s, 10.0)
        try:
            switched = await phone.until(
                lambda r: any(m["mode"] == "audio" for m in r["modes"]),
                "the page did not go to audio only (dataset.mode)",
                switch_ceiling_s,
            )
            at = next(m["t"] for m in switched["modes"] if m["mode"] == "audio")
            # from when sound flows on the audio-only connection (a new one may take a moment)
            await asyncio.sleep(3)
            # ... and once its jitter buffer has settled, as below
            start = sound_resumed((await phone.reach())["series"], at) + 2000
            said = await phone.visible_with(*SAYS_WORDS)
        except AssertionError as failed:
            problems.append(str(failed).split(";")[0])
            start = await phone.now()
    else:
        start += 2000  # the jitter buffer settles
    # the window, with a chat line and a ballot in it
    await asyncio.sleep(max(0.0, (start + 1000 - await phone.now()) / 1000))
    line = f"信号差也能说话 {time.time():.3f}"
    chat = await rig.chat_delay(phone, line, chat_ceiling_s)
    if chat is None:
        problems.append(f"the chat line did not arrive within {chat_ceiling_s:.0f} s")
    vote_id = await rig.open_vote("同意修建村道吗？")
    ballot = None
    try:
        ballot = await phone.cast_ballot("同意", ballot_ceiling_s)
        if ballot is None:
            problems.append(f"the ballot was not acknowledged within {ballot_ceiling_s:.0f} s")
    except Exception as failed:  # the options never showed
        problems.append(f"no ballot on the page: {str(failed).splitlines()[0]}")
    await rig.close_vote(vote_id)
    await asyncio.sleep(max(0.0, (start + window_s * 1000 - await phone.now()) / 1000))
    reach = await phone.reach()
    link_after, wall = rig.link.counters(), time.monotonic() - wall_before
    grown = window(reach["series"], start, start + window_s * 1000 + 600)
    whole = window(reach["series"], 0)
    sent = bytes_sent(rig.link.near, "v-near") - sent_before
    dropped = link_after["v-near"]["dropped"] - link_before["v-near"]["dropped"]
    fps_seen = [s["fps"] for s in reach["series"] if s["t"] >= start and s["fps"] is not None]
    last = reach["series"][-1] if reach["series"] else {}
    seconds = grown["seconds"] or None
    first_sound = reach.get("firstSoundAt")
    from_sound = (last["t"] - first_sound) / 1000 if first_sound is not None and last else None

    def per_minute(value: float | None, over: float | None) -> int | None:
        return None if value is None or not over else round(value / over * 60)

    def s(ms: float | None) -> float | None:
        return None if ms is None else round(ms / 1000, 2)

    ratio = concealment(grown)
    rate = frame_rate(grown)
    return {
        "profile": rig.link.profile.name if rig.link.profile else "clean",
        "first_sound_s": s(reach.get("firstSoundAt")),
        "first_sound_via": reach.get("firstSoundVia"),
        "first_picture_s": s(reach.get("firstPictureAt")),
        "modes": [
            {"at_s": s(m["t"]), "mode": m["mode"], "reason": m["reason"]} for m in reach["modes"]
        ],  # fmt: skip
        "mode": last.get("mode"),
        "mode_reason": last.get("reason"),
        "state": last.get("state"),
        # what the page said on screen once it had gone to audio only
        "said_on_switch": sorted(set(said)),
        "window_from_s": s(start),
        "window_s": round(grown["seconds"], 1),
        "concealment_ratio": None if ratio is None else round(ratio, 4),
        # seconds of sound played per second of the window: a gap is not concealment
        "audio_coverage": (
            round(grown.get("audio.totalSamplesReceived", 0) / 48000 / seconds, 3)
            if seconds
            else None
        ),  # fmt: skip
        "audio_coverage_from_first_sound": (
            round(whole.get("audio.totalSamplesReceived", 0) / 48000 / from_sound, 3)
            if from_sound
            else None
        ),  # fmt: skip
        "hls_seconds_played_in_window": round(grown.get("element.secondsPlayed", 0), 1),
        "audio_packets_lost": grown.get("audio.packetsLost"),
        "audio_fec_packets": grown.get("audio.fecPacketsReceived"),
        "fps": None if rate is None else round(rate, 1),
        "fps_reported_median": (
            sorted(fps_seen)[len(fps_seen) // 2] if fps_seen else None
        ),  # fmt: skip
        "video_bytes_in_window": grown.get("video.bytesReceived"),
        "video_freezes": grown.get("video.freezeCount"),
        "browser_bytes_per_min_window": per_minute(grown.get("transport.bytesReceived"), seconds),
        "browser_bytes_per_min_whole": per_minute(
            whole.get("transport.bytesReceived"), whole["seconds"]
        ),
        "link_bytes_to_phone_per_min": per_minute(sent, wall),
        "link_tbf_dropped_packets": dropped,
        "chat_delay_s": None if chat is None else round(chat, 3),
        "ballot_ack_s": None if ballot is None else round(ballot, 3),
        "peer_connections": reach.get("pcs"),
        "page_errors": phone.errors[:5],
        "problems": problems,
    }
