#!/usr/bin/env python3
"""Benchmark the encoded WebRTC fan-out against aiortc's stock MediaRelay.

    .venv/bin/python scripts/bench_fanout.py [--viewers 1,10,50,100,200] [--relay-viewers 1,2,4]
        [--codec h264|vp8] [--width 1280 --height 720] [--fps 30] [--bitrate 1500000]
        [--seconds 10] [--viewer-procs K] [--recording-compare 10] [--json-only]

Starts, all on 127.0.0.1 and each in its own process group: the Cunhui server
(`cunhui serve`), a WHIP publisher (synthetic video + Opus), K viewer processes
holding the WHEP viewers (they count RTP headers without decrypting or decoding)
and one decoding viewer; then, in the same run, a baseline server built on
aiortc's MediaRelay. Prints one JSON object on stdout and a table on stderr.
See scripts/bench/ for how each part works; `--help` lists every option.

Recording: the fan-out server runs with RECORD_MEETINGS=0 (no recording, no
live HLS, no periodic keyframe requests), so its figures stay comparable with
those measured before issue 7; each fan-out row says "recording": false
(`--fanout-recording` turns it on). The cost of recording is measured apart
(`--recording-compare N`, default 10, 0 skips it): two fresh servers, one
with RECORD_MEETINGS=0 and one with RECORD_MEETINGS=1, the same publisher and
N viewers, the same --seconds window; the JSON's "recording" object has the
server's CPU off / on / delta, the recorder thread's own CPU, the HLS segments
and raw.mp4 bytes written, and targets.recording_h264_adds_lt_10_pct_of_a_core.

Internal entry points (used by the coordinator):
    bench_fanout.py --baseline-server --port P [--bitrate B]
    bench_fanout.py --worker publisher|viewers
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):  # the repo (media/) and scripts/ (bench/)
    if path not in sys.path:
        sys.path.insert(0, path)


def int_list(value: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {value}") from exc
    if any(i < 1 for i in items):  # an empty list skips that phase
        raise argparse.ArgumentTypeError("viewer counts must be >= 1")
    return sorted(set(items))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_fanout.py",
        description="Benchmark the encoded WebRTC fan-out (and aiortc's MediaRelay baseline).",
    )
    parser.add_argument(
        "--viewers",
        type=int_list,
        default=[1, 10, 50, 100, 200],
        help="fan-out viewer counts, ramped up in order (default 1,10,50,100,200)",
    )
    parser.add_argument(
        "--relay-viewers",
        type=int_list,
        default=[1, 2, 4],
        help="MediaRelay baseline viewer counts (default 1,2,4)",
    )
    parser.add_argument("--codec", choices=("h264", "vp8"), default="h264")
    parser.add_argument("--width", type=int, help="default 1280 (h264) or 640 (vp8)")
    parser.add_argument("--height", type=int, help="default 720 (h264) or 480 (vp8)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument(
        "--bitrate",
        type=int,
        default=1_500_000,
        help="publisher video bitrate, bit/s (aiortc clamps H.264 to "
        "0.5-3 Mbit/s, VP8 to 0.25-1.5 Mbit/s)",
    )
    parser.add_argument(
        "--publisher-preset",
        default="ultrafast",
        help="x264 preset of the publisher's H.264 encoder (default ultrafast, "
        "so the load generator leaves the cores to the server; 'aiortc' "
        "keeps aiortc's own settings, x264's medium, ~80 %% of a core here)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per N")
    parser.add_argument(
        "--viewer-procs",
        type=int,
        default=2,
        help="processes holding the counting viewers (default 2)",
    )
    parser.add_argument(
        "--viewer-coalesce-ms",
        type=float,
        default=5.0,
        help="counting viewer processes gather this many ms of datagrams per "
        "wake-up (default 5; 0: wake per datagram). On loopback the "
        "sender's sendto also runs the receive path and wakes the "
        "receiver, so viewers woken per packet inflate the server's CPU; "
        "join times are late by at most this",
    )
    parser.add_argument(
        "--join-batch",
        type=int,
        default=10,
        help="concurrent WHEP joins per viewer process (default 10)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds between the last first frame and the window (default 2)",
    )
    parser.add_argument(
        "--first-frame-timeout",
        type=float,
        default=20.0,
        help="seconds a new viewer may take to its first video packet",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=10.0,
        help="skip the remaining fan-out N after this long (default 10; the "
        "relay baseline still runs)",
    )
    parser.add_argument(
        "--recording-compare",
        type=int,
        default=10,
        metavar="N",
        help="measure recording + live HLS: a server with RECORD_MEETINGS=0 "
        "then one with RECORD_MEETINGS=1, each with the publisher alone "
        "and with N viewers for --seconds; 0 skips it (default 10)",
    )
    parser.add_argument(
        "--recording-rounds",
        type=int,
        default=1,
        help="(off, on) pairs for --recording-compare; the JSON reports "
        "medians (default 1, at most 5)",
    )
    parser.add_argument(
        "--recording-skip-low",
        action="store_true",
        help="--recording-compare without its third server per round (recording on, "
        "HLS_LOW_RENDITION=0), which measures the low HLS rendition's cost",
    )
    parser.add_argument(
        "--fanout-recording",
        action="store_true",
        help="run the fan-out phase's server with RECORD_MEETINGS=1 (default: "
        "0, so the fan-out figures stay comparable with earlier runs)",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the temporary directory with every process's log",
    )
    parser.add_argument(
        "--audio-only",
        action="store_true",
        help="the fan-out viewers watch sound only, as the watch page's 只听声音 does "
        "(two audio m-lines, RED offered, no video); frames_ratio counts audio "
        "packets. The MediaRelay baseline is skipped (it has no audio-only mode)",
    )
    parser.add_argument("--json-only", action="store_true", help="no table on stderr")
    args = parser.parse_args(argv)
    if args.width is None:
        args.width = 1280 if args.codec == "h264" else 640
    if args.height is None:
        args.height = 720 if args.codec == "h264" else 480
    args.x264_preset = None if args.publisher_preset == "aiortc" else args.publisher_preset
    if args.audio_only:
        args.relay_viewers = []
    if args.viewer_procs < 1 or args.join_batch < 1 or args.seconds <= 0:
        parser.error("--viewer-procs, --join-batch and --seconds must be positive")
    if args.recording_compare < 0 or not 1 <= args.recording_rounds <= 5:
        parser.error("--recording-compare must be >= 0 and --recording-rounds 1..5")
    return args


def main(argv: list[str]) -> int:
    if "--baseline-server" in argv:
        from bench import baseline_server

        return baseline_server.main(argv)
    if argv[:1] == ["--worker"] and len(argv) == 2:
        if argv[1] == "publisher":
            from bench import publisher

            return publisher.main()
        if argv[1] == "viewers":
            from bench import viewers

            return viewers.main()
        print(f"unknown worker {argv[1]!r}", file=sys.stderr)
        return 2
    args = parse_args(argv)
    if args.audio_only:  # read (on import) by bench/measure.py and the viewer workers
        os.environ["BENCH_AUDIO_ONLY"] = "1"
    from bench import runner

    return runner.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
