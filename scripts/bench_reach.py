#!/usr/bin/env python3
"""Reach on links shaped for real (issue 15): one JSON line of figures per profile.

For each profile (weak 300 kbit/s 5 %, very_weak 100 kbit/s 10 %, 4g 2 Mbit/s 1 %, and
clean, an unshaped veth) a fresh server and the bench's publisher (720p H.264 at
``--bitrate``, Opus tone) run in one network namespace, Chromium (360×740, zh-CN) as a
signed-in member on the watch page in another, joined by a veth pair shaped with
``tc tbf`` (rate) and nftables ``numgen random`` (UDP loss) — tests/support/shaped.py,
tests/support/reach.py (the figures and how they are taken; the shaped-link tests use
the same code). Printed per profile: first sound and first picture (s from the
navigation's start), the modes the page chose and when, the concealment ratio and the
share of the window with sound, frames per second, bytes per minute received by the
browser (getStats) and carried by the link towards it (tbf counters), the chat line's
delivery delay and the ballot's acknowledgement delay.

Needs root (it creates and deletes two network namespaces; every address is a 10.x
inside them), tc and nft, and Chromium. Run:

    sudo .venv/bin/python scripts/bench_reach.py [--profiles weak,4g] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROFILE_NAMES = ("weak", "very_weak", "4g", "clean")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profiles",
        default=",".join(PROFILE_NAMES),
        help="comma-separated, of " + ", ".join(PROFILE_NAMES),
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured (5-300)")
    parser.add_argument(
        "--switch-ceiling", type=float, default=90.0, help="longest wait for audio only (s)"
    )
    parser.add_argument("--bitrate", type=int, default=600_000, help="the camera's bit/s")
    parser.add_argument("--repeat", type=int, default=1, help="runs per profile (1-5)")
    args = parser.parse_args(argv)
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = set(args.profiles) - set(PROFILE_NAMES)
    if unknown or not args.profiles:
        parser.error(f"unknown profiles {sorted(unknown)}; choose from {PROFILE_NAMES}")
    if not 5 <= args.window <= 300 or not 1 <= args.repeat <= 5:
        parser.error("--window must be 5..300 and --repeat 1..5")
    if not 10 <= args.switch_ceiling <= 300:
        parser.error("--switch-ceiling must be 10..300")
    return args


async def measure(name: str, args: argparse.Namespace, folder: Path) -> dict:
    from playwright.async_api import async_playwright

    from tests.support.reach import ReachRig, run_profile
    from tests.support.shaped import PROFILES

    profile = None if name == "clean" else PROFILES[name]
    started = time.monotonic()
    async with ReachRig(folder, profile, bitrate=args.bitrate) as rig:
        async with async_playwright() as pw, rig.phone(pw) as phone:
            figures = await run_profile(
                rig,
                phone,
                wait_for_audio=name in ("weak", "very_weak"),
                window_s=args.window,
                switch_ceiling_s=args.switch_ceiling,
            )
    link = {"rate_kbit": profile.rate_kbit, "loss_percent": profile.loss_percent} if profile else {}
    return {**figures, **link, "publisher_bitrate": args.bitrate,
            "run_s": round(time.monotonic() - started, 1)}  # fmt: skip


def publisher_worker() -> int:
    """The bench's publisher worker (scripts/bench/publisher.py), speaking instead of a tone.

    Opus puts in-band FEC only on frames its voice detector calls speech (a pure tone
    gets it on ~10 % of frames: helper E's notes), so the meeting's sound here is
    ``speech_like`` (scripts/bench/peers.py). Only this worker process is changed.
    """
    import numpy as np
    from bench import peers, publisher  # scripts/ is on this worker's PYTHONPATH

    speech = peers.speech_like()  # 4 s: 200 frames of 20 ms
    frames = [
        np.ascontiguousarray(speech[:, i : i + publisher.AUDIO_SAMPLES])
        for i in range(0, speech.shape[1], publisher.AUDIO_SAMPLES)
    ]
    publisher._make_audio_frames = lambda: frames
    return publisher.main()


def main(argv: list[str]) -> int:
    if argv == ["--worker", "publisher"]:
        return publisher_worker()
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_reach: needs root (network namespaces, tc, nft)", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="cunhui-reach-") as tmp:
        for name in args.profiles:
            for run in range(args.repeat):
                folder = Path(tmp) / f"{name}-{run}"
                folder.mkdir()
                try:
                    figures = asyncio.run(measure(name, args, folder))
                except Exception as failed:  # one profile failing still reports the others
                    figures = {"profile": name, "error": f"{type(failed).__name__}: {failed}"}
                    server_log = folder / "server.log"
                    if server_log.exists():
                        figures["server_log_tail"] = server_log.read_text()[-1500:]
                print(json.dumps(figures, ensure_ascii=False), flush=True)
                results.append(figures)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
