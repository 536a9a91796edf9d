"""The cost of recording + live HLS: the same meeting with RECORD_MEETINGS=0 and =1,
and of the HLS's low rendition: HLS_LOW_RENDITION=0 and =1.

Each round starts fresh Cunhui servers in turn, recording off, then on without the
low rendition (unless ``--recording-skip-low``), then on with it,
each with the same publisher settings and ``--recording-compare`` counting
viewers, and measures each server's own CPU (utime+stime of its process tree,
from /proc) in two windows of ``--seconds``: the publisher alone, then with
the viewers. The "on" server must really record: its
``GET /api/meetings/{id}/recording`` says ``recording`` with a ``started_at``,
its playlist exists with a segment and is served, and segments and ``raw.mp4``
grow during the window; the "off" server must record nothing. Either failing
ends the run with an error.

Per-thread CPU comes from /proc/PID/task/TID/stat; the server runs with
``thread_names/sitecustomize.py`` so that its threads carry their Python names
(the recorder's writer thread is ``recorder-<meeting id>``; x264's threads,
started from it for a VP8 transcode, inherit that name; the low rendition's
encoder thread is ``recorder-<meeting id>-low``, its x264 threads inherit that).

Each rendition's bitrate is measured from the files: the bytes of the segments its
published playlist lists over the playlist's seconds, and as MB an hour.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from pathlib import Path

from .common import log, tail
from .measure import pct, rnd, settle, snapshot, summarize
from .report import server_log
from .runner import Phase, add_viewers, leave_all, start_phase, stop_phase
from .servers import Target, start_cunhui, stop_server

RECORDER_THREAD = "recorder-"
LOW_THREAD_SUFFIX = "-low"
#: the live HLS's variant playlists, by rendition
RENDITIONS = {"full": "index.m3u8", "low": "low.m3u8", "audio": "audio.m3u8"}
#: how long the "on" server may take from the publisher's first frames to a
#: playlist with one segment (first keyframe + one 2 s segment)
START_TIMEOUT = 20.0
EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.M)


# --------------------------------------------------------------------------
# What the server wrote


async def _recording_status(target: Target) -> tuple[int, dict | str]:
    headers = {"Authorization": f"Bearer {target.token}"}
    async with target.http.get(
        f"{target.base}/api/meetings/{target.meeting}/recording", headers=headers
    ) as response:
        if response.status == 200:
            return 200, await response.json()
        return response.status, await response.text()


def _renditions(target: Target, part: int = 1) -> dict:
    """Each rendition's published playlist: seconds, bytes, measured kbit/s, MB an hour."""
    directory = target.recordings_dir / target.meeting / str(part)
    found = {}
    for kind, name in RENDITIONS.items():
        try:
            text = (directory / name).read_text()
        except FileNotFoundError:
            continue
        seconds = sum(float(x) for x in EXTINF.findall(text))
        size = 0
        for line in text.splitlines():
            if line and not line.startswith("#"):
                try:
                    size += (directory / line).stat().st_size
                except FileNotFoundError:
                    pass
        kbps = size * 8 / seconds / 1000 if seconds else None
        found[kind] = {
            "seconds": rnd(seconds, 2),
            "bytes": size,
            "kbps": rnd(kbps, 1),
            "mb_per_hour": rnd(kbps * 3600 / 8 / 1000, 1) if kbps else None,
        }
    return found


def _files(target: Target, part: int = 1) -> dict:
    """Segments, playlist durations and raw.mp4 size in the part's directory."""
    directory = target.recordings_dir / target.meeting / str(part)
    playlist = directory / "index.m3u8"
    try:
        durations = [float(x) for x in EXTINF.findall(playlist.read_text())]
    except (FileNotFoundError, ValueError):
        durations = []
    try:
        raw = (directory / "raw.mp4").stat().st_size
    except FileNotFoundError:
        raw = 0
    return {
        "directory": directory,
        "playlist": playlist.exists(),
        "segments": len(list(directory.glob("seg_*.ts"))),
        "playlist_segments": len(durations),
        "hls_seconds": sum(durations),
        "segment_max_s": max(durations, default=None),
        "raw_mp4_bytes": raw,
    }


async def wait_recording(target: Target, timeout: float = START_TIMEOUT) -> dict:
    """Until the server records (status, started_at, a playlist with a segment, served)."""
    deadline = time.monotonic() + timeout
    state: object = None
    while time.monotonic() < deadline:
        if not target.alive():
            raise RuntimeError(target.death())
        code, body = await _recording_status(target)
        files = _files(target)
        state = {
            "http": code,
            "body": body,
            "files": {k: v for k, v in files.items() if k != "directory"},
        }
        if (
            code == 200
            and body.get("status") == "recording"
            and body.get("started_at")
            and body.get("hls")
            and files["playlist_segments"] >= 1
        ):
            async with target.http.get(
                target.base + body["hls"], headers={"Authorization": f"Bearer {target.token}"}
            ) as response:
                text = await response.text()
                if response.status == 200 and text.startswith("#EXTM3U"):
                    return body
                state["playlist_http"] = [response.status, text[:200]]
        await asyncio.sleep(0.5)
    raise RuntimeError(
        f"{target.name}: RECORD_MEETINGS=1 but the server is not recording "
        f"after {timeout:.0f} s: {state}\n{tail(target.log, 20)}"
    )


async def check_not_recording(target: Target) -> None:
    code, body = await _recording_status(target)
    written = (
        [p for p in target.recordings_dir.rglob("*") if p.is_file()]
        if target.recordings_dir.exists()
        else []
    )
    if code != 404 or written:
        raise RuntimeError(
            f"{target.name}: RECORD_MEETINGS=0 but the server records: "
            f"GET recording {code} {body}; files {written[:5]}"
        )


# --------------------------------------------------------------------------
# Measuring


def _threads(target: Target, a: dict, b: dict) -> dict[str, float]:
    """CPU % per thread name over the window (threads of one name summed; "main" = the
    event loop's thread)."""
    wall = b["t"] - a["t"]
    by_name: dict[str, float] = {}
    names = {**a["cpu"]["server_thread_names"], **b["cpu"]["server_thread_names"]}
    for key, seconds in b["cpu"]["server_threads"].items():
        name = "main" if key[1] == target.pid else names.get(key, "?")
        used = seconds - a["cpu"]["server_threads"].get(key, 0.0)
        by_name[name] = by_name.get(name, 0.0) + pct(used, wall)
    return {k: round(v, 2) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v >= 0.005}


def _recorder(
    target: Target, a: dict, b: dict, *, low_only: bool = False
) -> tuple[float | None, int]:
    """CPU % of the recorder's threads (writer + any it started) and how many there were;
    ``low_only``: those of the low rendition's encoder."""
    wall = b["t"] - a["t"]
    names = b["cpu"]["server_thread_names"]
    keys = [
        k
        for k, n in names.items()
        if n.startswith(RECORDER_THREAD) and (not low_only or n.endswith(LOW_THREAD_SUFFIX))
    ]
    if not keys:
        return None, 0
    used = sum(b["cpu"]["server_threads"][k] - a["cpu"]["server_threads"].get(k, 0.0) for k in keys)
    return round(pct(used, wall), 2), len(keys)


async def _start(http, tmp: Path, children, record: bool, low: bool, name: str) -> Target:
    """start_cunhui with HLS_LOW_RENDITION set (the server's environment is this one's)."""
    before = os.environ.get("HLS_LOW_RENDITION")
    os.environ["HLS_LOW_RENDITION"] = "1" if low else "0"
    try:
        return await start_cunhui(http, tmp, children, record=record, name=name)
    finally:
        if before is None:
            os.environ.pop("HLS_LOW_RENDITION", None)
        else:
            os.environ["HLS_LOW_RENDITION"] = before


async def run_side(
    http, tmp: Path, children, args, record: bool, name: str, low: bool = True
) -> dict:
    """One fresh server, recording ``record`` (with the low rendition ``low``):
    publisher-only window, then N viewers."""
    n = args.recording_compare
    log(
        f"{name}: starting the Cunhui server (RECORD_MEETINGS={int(record)}, "
        f"HLS_LOW_RENDITION={int(low)})"
    )
    target = await _start(http, tmp, children, record, low, name)
    side: dict = {"record_meetings": record, "hls_low_rendition": low if record else None}
    phase: Phase | None = None
    try:
        phase = await start_phase(name, target, args, tmp, children, decoder=False)
        if record:
            status = await wait_recording(target)
        else:
            await check_not_recording(target)

        # window 1: the publisher alone
        a = await snapshot(phase)
        await asyncio.sleep(args.seconds)
        b = await snapshot(phase)
        wall = b["t"] - a["t"]
        phase.idle = {
            "server_cpu_pct": pct(b["cpu"]["server"] - a["cpu"]["server"], wall),
            "server_rss_kb": b["rss_kb"],
        }
        side["publisher_only"] = {
            "server_cpu_pct": rnd(phase.idle["server_cpu_pct"], 2),
            "main_thread_cpu_pct": _threads(target, a, b).get("main"),
            "recorder_threads_cpu_pct": _recorder(target, a, b)[0] if record else None,
            "low_rendition_threads_cpu_pct": _recorder(target, a, b, low_only=True)[0]
            if record and low
            else None,
            "threads_cpu_pct": _threads(target, a, b),
            "window_s": rnd(wall, 2),
        }

        # window 2: N viewers
        await add_viewers(phase, n, 1, args)
        await asyncio.sleep(args.settle)
        a = await settle(phase, args)
        files_a = _files(target) if record else None
        await asyncio.sleep(args.seconds)
        b = await snapshot(phase)
        files_b = _files(target) if record else None
        summary = summarize(phase, n, 1, a, b)
        threads = _threads(target, a, b)
        side.update(
            {
                "viewers": n,
                "server_cpu_pct": rnd(
                    pct(b["cpu"]["server"] - a["cpu"]["server"], b["t"] - a["t"]), 2
                ),
                "main_thread_cpu_pct": threads.get("main"),
                "threads_cpu_pct": threads,
                **{
                    k: summary[k]
                    for k in (
                        "server_kernel_cpu_pct",
                        "server_busiest_thread_cpu_pct",
                        "server_rss_mb",
                        "frames_ratio_min",
                        "failed_viewers",
                        "frames_sent_per_s",
                        "frames_published_per_s",
                        "video_bitrate_kbps",
                        "keyframes_requested_upstream",
                        "publisher_cpu_pct",
                        "machine_busy_pct",
                        "server_saturated",
                        "machine_saturated",
                        "load_generator_saturated",
                        "window_s",
                    )
                },
                # CPU of processes not in this benchmark (other jobs skew every figure)
                "machine_other_cpu_pct": rnd(
                    summary["machine_busy_pct"] - summary["machine_cpu_pct"], 1
                ),
            }
        )
        if record:
            recorder_pct, recorder_threads = _recorder(target, a, b)
            side["recorder_threads_cpu_pct"] = recorder_pct
            side["recorder_threads"] = recorder_threads
            side["low_rendition_threads_cpu_pct"] = (
                _recorder(target, a, b, low_only=True)[0] if low else None
            )
            side["renditions"] = _renditions(target)
            code, body = await _recording_status(target)
            grew = (
                files_b["segments"] > files_a["segments"]
                and files_b["raw_mp4_bytes"] > files_a["raw_mp4_bytes"]
            )
            if code != 200 or body.get("status") != "recording" or not grew:
                raise RuntimeError(
                    f"{name}: the recording stopped or did not grow during the "
                    f"window: GET recording {code} {body}; files before "
                    f"{files_a}, after {files_b}\n{tail(target.log, 20)}"
                )
            side.update(
                {
                    "status": {
                        k: body.get(k)
                        for k in ("status", "started_at", "video_codec", "hls", "renditions")
                    },
                    "started_at_before_window": status.get("started_at"),
                    "hls_segments_in_window": files_b["segments"] - files_a["segments"],
                    "hls_seconds_in_window": rnd(
                        files_b["hls_seconds"] - files_a["hls_seconds"], 2
                    ),
                    "raw_mp4_bytes_in_window": files_b["raw_mp4_bytes"] - files_a["raw_mp4_bytes"],
                    "hls_segments": files_b["segments"],
                    "hls_seconds": rnd(files_b["hls_seconds"], 2),
                    "hls_segment_max_s": files_b["segment_max_s"],
                    "raw_mp4_bytes": files_b["raw_mp4_bytes"],
                    "recordings_dir": str(target.recordings_dir),
                }
            )
        else:
            await check_not_recording(target)
        await leave_all(phase)
        log(
            f"{name}: server {side['server_cpu_pct']} % with {n} viewers, "
            f"{side['publisher_only']['server_cpu_pct']} % with the publisher only"
            + (f"; recorder threads {side.get('recorder_threads_cpu_pct')} %" if record else "")
        )
    finally:
        if phase is not None:
            await stop_phase(phase, children)
            side["publisher"] = phase.publisher_stats
        holder: dict = {}
        server_log(holder, "log", target)
        if holder:
            side["server_log"] = holder["log"]
        stop_server(target, children)
    return side


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


async def compare(http, tmp: Path, children, args) -> dict:
    """``--recording-rounds`` rounds of (off, on); medians over the rounds."""
    rounds = []
    for r in range(1, args.recording_rounds + 1):
        suffix = "" if args.recording_rounds == 1 else f"-{r}"
        off = await run_side(http, tmp, children, args, False, f"rec-off{suffix}")
        no_low = None
        if not getattr(args, "recording_skip_low", False):
            no_low = await run_side(
                http, tmp, children, args, True, f"rec-on-nolow{suffix}", low=False
            )
        on = await run_side(http, tmp, children, args, True, f"rec-on{suffix}")
        rounds.append(
            {
                "off": off,
                "on_without_low": no_low,
                "on": on,
                "low_delta_cpu_pct": rnd(on["server_cpu_pct"] - no_low["server_cpu_pct"], 2)
                if no_low
                else None,
                "low_delta_cpu_pct_publisher_only": rnd(
                    on["publisher_only"]["server_cpu_pct"]
                    - no_low["publisher_only"]["server_cpu_pct"],
                    2,
                )
                if no_low
                else None,
                "delta_cpu_pct": rnd(on["server_cpu_pct"] - off["server_cpu_pct"], 2),
                "delta_cpu_pct_publisher_only": rnd(
                    on["publisher_only"]["server_cpu_pct"]
                    - off["publisher_only"]["server_cpu_pct"],
                    2,
                ),
            }
        )

    def med(side: str, *path: str):
        values = []
        for round_ in rounds:
            value = round_[side]
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value)
        return _median(values)

    last_on = rounds[-1]["on"]
    delta = _median([r["delta_cpu_pct"] for r in rounds])
    delta_without_low = _median(
        [
            r["on_without_low"]["server_cpu_pct"] - r["off"]["server_cpu_pct"]
            for r in rounds
            if r["on_without_low"]
        ]
    )
    return {
        "codec": args.codec,
        "video_codec_recorded": last_on["status"]["video_codec"],
        "viewers": args.recording_compare,
        "window_s": args.seconds,
        "rounds_run": len(rounds),
        "server_cpu_pct_off": med("off", "server_cpu_pct"),
        "server_cpu_pct_on": med("on", "server_cpu_pct"),
        "delta_cpu_pct": delta,
        "server_cpu_pct_off_publisher_only": med("off", "publisher_only", "server_cpu_pct"),
        "server_cpu_pct_on_publisher_only": med("on", "publisher_only", "server_cpu_pct"),
        "delta_cpu_pct_publisher_only": _median(
            [r["delta_cpu_pct_publisher_only"] for r in rounds]
        ),
        "recorder_threads_cpu_pct": med("on", "recorder_threads_cpu_pct"),
        "recorder_threads_cpu_pct_publisher_only": med(
            "on", "publisher_only", "recorder_threads_cpu_pct"
        ),
        # HLS_LOW_RENDITION=1 against =0 (both recording): the low rendition's cost
        "server_cpu_pct_on_without_low": med("on_without_low", "server_cpu_pct"),
        # recording as before issue 15 (no low rendition) against none (issue 7's target)
        "delta_cpu_pct_without_low": delta_without_low,
        "delta_without_low_lt_10_pct_of_a_core": delta_without_low < 10
        if delta_without_low is not None
        else None,
        "low_delta_cpu_pct": _median([r["low_delta_cpu_pct"] for r in rounds]),
        "low_delta_cpu_pct_publisher_only": _median(
            [r["low_delta_cpu_pct_publisher_only"] for r in rounds]
        ),
        "low_rendition_threads_cpu_pct": med("on", "low_rendition_threads_cpu_pct"),
        "low_rendition_threads_cpu_pct_publisher_only": med(
            "on", "publisher_only", "low_rendition_threads_cpu_pct"
        ),
        "recorder_threads_cpu_pct_without_low": med("on_without_low", "recorder_threads_cpu_pct"),
        # each rendition's bitrate as stored (the last round's "on" server, whole part)
        "renditions": last_on.get("renditions"),
        "main_thread_cpu_pct_off": med("off", "main_thread_cpu_pct"),
        "main_thread_cpu_pct_on": med("on", "main_thread_cpu_pct"),
        "hls_segments": last_on["hls_segments"],
        "hls_segments_in_window": last_on["hls_segments_in_window"],
        "raw_mp4_bytes": last_on["raw_mp4_bytes"],
        "raw_mp4_bytes_in_window": last_on["raw_mp4_bytes_in_window"],
        "delta_lt_10_pct_of_a_core": delta < 10 if delta is not None else None,
        "rounds": rounds,
    }
