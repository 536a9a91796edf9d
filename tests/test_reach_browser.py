"""A member on a weak mobile link hears the meeting, chats and votes (issue 15, "Reach").

Links shaped for real, not the browser's throttling: the server and the meeting's
camera (the bench's publisher: 720p H.264 at 600 kbit/s and Opus speech, on the
server's side of the link, unshaped) run in one network namespace, Chromium (360×740,
zh-CN) as a signed-in member on the watch page in another, joined by a veth pair whose
rate is a ``tc tbf`` each way and whose loss is nftables ``numgen random`` dropping UDP
on each side's input (tests/support/shaped.py; MEDIA-NOTES, "Weak links"). RTT is not
shaped (this kernel has no netem); tbf's queue adds its own delay under load. TCP is
not dropped, as on a radio link that retransmits: the chat and the ballot go over it.

The figures come from the page's own ``getStats`` (tests/support/reach.py, shared with
scripts/bench_reach.py, which prints them per profile):

- **weak** (300 kbit/s, 5 % loss): the page goes to audio only by itself
  (``body.dataset.mode`` "audio", ``modeReason`` "weak-link") and says so on screen;
  over 20 s after the switch the sound is continuous (concealed samples at most 5 %
  of those received, and sound for at least 90 % of the window) and no video arrives;
  a chat line reaches the committee's client, and a ballot is acknowledged.
- **very weak** (100 kbit/s, 10 %): audio only still plays, and the ballot goes through.
- **ordinary 4G** (2 Mbit/s, 1 %): the picture plays at 20 frames a second or more and
  the page stays on video.

The issue's time limits are first sound within 3 s of opening the page, a chat line
within 2 s and a ballot acknowledged within 3 s. On a busy 2-core CI machine (Chromium,
a 720p encoder, the server) a tight deadline fails for reasons that are not the link's,
so the test asserts generous bounds (first sound 10 s, chat 4 s, ballot 6 s) and
scripts/bench_reach.py reports the real figures against the issue's.

Marked ``netns`` and ``shaped``: it runs in scripts/test's second phase, inside the
loopback-only namespace, and creates (and deletes) two namespaces of its own. It skips
loudly where links cannot be shaped (not root, no tc or nft) or there is no Chromium.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import async_playwright

from .support.browser import require_browser_sandbox
from .support.reach import SAYS_WORDS, ReachRig, run_profile
from .support.shaped import PROFILES, require_shaping

pytestmark = [pytest.mark.netns, pytest.mark.shaped]

#: the issue's limits, and what this test asserts on a busy machine (module docstring)
FIRST_SOUND_S = 10.0  # issue: 3 s
CHAT_S = 4.0  # issue: 2 s
BALLOT_S = 6.0  # issue: 3 s
MAX_CONCEALMENT = 0.05
MIN_COVERAGE = 0.9
MIN_FPS = 20.0
#: "no video packets": what an audio-only window may receive on video m-lines at most
NO_VIDEO_BYTES = 10_000
#: the audio-only line says both: the network (网络) is weak, and only sound (只听声音) plays;
#: the audio-only choice button alone says 只听声音 and does not count
AUDIO_ONLY_WORDS = SAYS_WORDS


def requirements_failed(figures: dict, checks: list[tuple[bool, str]]) -> None:
    """Fail with every requirement that is not met, and all the figures."""
    failed = [what for ok, what in checks if not ok] + figures["problems"]
    failed += [f"page error: {e}" for e in figures["page_errors"]]
    assert not failed, (
        "on the " + figures["profile"] + " link:\n  " + "\n  ".join(failed)
        + "\nfigures: " + json.dumps(figures, ensure_ascii=False)
    )  # fmt: skip


def at_most(value, bound) -> bool:
    return value is not None and value <= bound


def at_least(value, bound) -> bool:
    return value is not None and value >= bound


async def test_on_a_weak_link_the_member_hears_everything_chats_and_votes(tmp_path):
    require_browser_sandbox()
    require_shaping()
    async with ReachRig(tmp_path, PROFILES["weak"]) as rig:
        async with async_playwright() as pw, rig.phone(pw) as phone:
            figures = await run_profile(rig, phone, wait_for_audio=True, window_s=20)
    # on screen (in the first 740 px) just after the switch, before the member scrolls to chat
    lines = figures["said_on_switch"]
    banner = [line for line in lines if all(word in line for word in AUDIO_ONLY_WORDS)]
    print("\nweak link:", json.dumps(figures, ensure_ascii=False))
    switched = [m for m in figures["modes"] if m["mode"] == "audio"]
    requirements_failed(
        figures,
        [
            (
                at_most(figures["first_sound_s"], FIRST_SOUND_S),
                f"first sound {figures['first_sound_s']} s after opening the page "
                f"(test bound {FIRST_SOUND_S} s; the issue: 3 s)",
            ),
            (
                bool(switched) and switched[0]["reason"] == "weak-link",
                f"the page did not go to audio only because of the link by itself: modes "
                f"{figures['modes']} (want mode 'audio', reason 'weak-link')",
            ),
            (
                figures["mode"] == "audio",
                f"not on audio only at the end of the window: {figures['mode']}",
            ),
            (
                bool(banner),
                f"no visible line saying {' and '.join(AUDIO_ONLY_WORDS)} while on audio only "
                f"(visible: {lines})",
            ),
            (
                at_most(figures["concealment_ratio"], MAX_CONCEALMENT),
                f"concealed samples {figures['concealment_ratio']} of those received over "
                f"{figures['window_s']} s after the switch (at most {MAX_CONCEALMENT})",
            ),
            (
                at_least(figures["audio_coverage"], MIN_COVERAGE),
                f"sound for {figures['audio_coverage']} of the window (gaps; at least "
                f"{MIN_COVERAGE})",
            ),
            (
                at_most(figures["video_bytes_in_window"], NO_VIDEO_BYTES),
                f"{figures['video_bytes_in_window']} bytes of video received on audio only",
            ),
            (
                at_most(figures["chat_delay_s"], CHAT_S),
                f"chat line arrived after {figures['chat_delay_s']} s (test bound {CHAT_S} s; "
                "the issue: 2 s)",
            ),
            (
                at_most(figures["ballot_ack_s"], BALLOT_S),
                f"ballot acknowledged after {figures['ballot_ack_s']} s (test bound "
                f"{BALLOT_S} s; the issue: 3 s)",
            ),
        ],
    )


async def test_on_a_very_weak_link_audio_only_still_plays_and_the_ballot_goes_through(
    tmp_path,
):
    require_browser_sandbox()
    require_shaping()
    async with ReachRig(tmp_path, PROFILES["very_weak"]) as rig:
        async with async_playwright() as pw, rig.phone(pw) as phone:
            figures = await run_profile(rig, phone, wait_for_audio=True, window_s=20)
    print("\nvery weak link:", json.dumps(figures, ensure_ascii=False))
    requirements_failed(
        figures,
        [
            (
                figures["mode"] == "audio",
                f"not on audio only: modes {figures['modes']}",
            ),
            (
                at_least(figures["audio_coverage"], 0.5),
                f"sound for {figures['audio_coverage']} of the window (samples must grow)",
            ),
            (
                figures["concealment_ratio"] is not None,
                "no concealment figure: no audio samples received in the window",
            ),
            (
                figures["ballot_ack_s"] is not None,
                "the ballot was not acknowledged",
            ),
        ],
    )


async def test_on_ordinary_4g_the_picture_plays_smoothly(tmp_path):
    require_browser_sandbox()
    require_shaping()
    async with ReachRig(tmp_path, PROFILES["4g"]) as rig:
        async with async_playwright() as pw, rig.phone(pw) as phone:
            figures = await run_profile(rig, phone, wait_for_audio=False, window_s=15)
    print("\n4G link:", json.dumps(figures, ensure_ascii=False))
    modes = [m["mode"] for m in figures["modes"] if m["mode"] is not None]
    requirements_failed(
        figures,
        [
            (
                at_least(figures["fps"], MIN_FPS),
                f"{figures['fps']} frames decoded a second over {figures['window_s']} s "
                f"(at least {MIN_FPS})",
            ),
            (
                bool(modes) and set(modes) == {"video"},
                f"the page did not stay on video: modes {figures['modes']}",
            ),
        ],
    )
