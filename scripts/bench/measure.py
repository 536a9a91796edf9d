"""What the fan-out bench measures: counters of every process read at one instant, and
the figures of one window between two such snapshots."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import TYPE_CHECKING

from .common import (
    busiest_thread_seconds,
    cpu_seconds,
    cpu_system_seconds,
    log,
    machine_busy_seconds,
    percentile,
    thread_names,
    tree_cpu_seconds,
    tree_rss_kb,
)

if TYPE_CHECKING:
    from .runner import Phase


SATURATED_PCT = 90.0  # a process above this share of one core is saturated


SNAPSHOT_LEAD = 0.3  # seconds: every process reads its counters at the same instant


async def snapshot(phase: Phase, attempts: int = 5) -> dict:
    """Counters of the server, the publisher and every viewer, all read at one instant.

    ``time.monotonic()`` is CLOCK_MONOTONIC, the same clock in every process:
    each worker is told the instant and reads its counters then, so the time
    a busy worker takes to answer does not skew the window. The server reads
    its counters when its event loop gets to the request, which under load can
    be 100 ms later (3 frames); so the snapshot is taken again, up to
    ``attempts`` times, until the server answered within STATS_LATENCY.
    """
    best = None
    for _ in range(attempts):
        snap = await _snapshot_once(phase)
        if best is None or snap["media"]["_latency"] < best["media"]["_latency"]:
            best = snap
        if best["media"]["_latency"] <= STATS_LATENCY:
            break
    return best


STATS_LATENCY = 0.02  # seconds (less than a frame at 30 fps)


async def _snapshot_once(phase: Phase) -> dict:
    at = time.monotonic() + SNAPSHOT_LEAD

    async def until_at() -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))

    async def server_media() -> dict:
        await until_at()
        media = await phase.target.media()
        media["_latency"] = time.monotonic() - at
        return media

    async def local() -> dict:
        await until_at()
        server_pids = phase.target.pids()
        return {
            "t": time.monotonic(),
            "rss_kb": tree_rss_kb(server_pids),
            "cpu": {
                "server": tree_cpu_seconds(server_pids),
                "server_sys": sum(cpu_system_seconds(p) for p in server_pids),
                "server_threads": busiest_thread_seconds(server_pids),
                "server_thread_names": thread_names(server_pids),
                "publisher": cpu_seconds(phase.publisher.pid),
                "decoder": cpu_seconds(phase.decoder.pid) if phase.decoder else 0.0,
                "workers": [cpu_seconds(w.pid) for w in phase.workers],
                "coordinator": cpu_seconds(os.getpid()),
                "machine": machine_busy_seconds(),
            },
        }

    calls = [local(), server_media(), phase.publisher.call("stats", timeout=30, at=at)]
    calls += [w.call("snapshot", timeout=60, at=at) for w in phase.all_workers]
    here, media, published, *snaps = await asyncio.gather(*calls)
    viewers = {}
    for worker, snap in zip(phase.all_workers, snaps, strict=True):
        for index, row in enumerate(snap["viewers"]):
            viewers[(worker.pid, index)] = row
    decoded = next((s["decoded"] for s in snaps if "decoded" in s), None)
    return {
        "t": here["t"],
        "media": media,
        "published": published.get("frames", 0),
        "cpu": here["cpu"],
        "rss_kb": here["rss_kb"],
        "viewers": viewers,
        "decoded": decoded,
    }


def pct(seconds: float, wall: float) -> float:
    return 100.0 * seconds / wall if wall > 0 else 0.0


def rnd(x, digits=3):
    return None if x is None else round(x, digits)


#: BENCH_AUDIO_ONLY=1 (bench_fanout.py --audio-only): the viewers receive sound only, so
#: frames_ratio counts their audio packets (one per Opus frame) against the server's
#: audio frames; everything else is measured as for video viewers
AUDIO_ONLY = os.environ.get("BENCH_AUDIO_ONLY") == "1"


def summarize(phase: Phase, n: int, step: int, a: dict, b: dict) -> dict:
    wall = b["t"] - a["t"]
    sent = b["media"]["frames"].get("video", 0) - a["media"]["frames"].get("video", 0)
    audio_sent = b["media"]["frames"].get("audio", 0) - a["media"]["frames"].get("audio", 0)
    published = b["published"] - a["published"]
    server_cpu = pct(b["cpu"]["server"] - a["cpu"]["server"], wall)
    server_sys = pct(b["cpu"]["server_sys"] - a["cpu"]["server_sys"], wall)
    machine_busy = pct(b["cpu"]["machine"] - a["cpu"]["machine"], wall)
    threads = b["cpu"]["server_threads"]
    busiest = max(
        (pct(t - a["cpu"]["server_threads"].get(k, 0.0), wall) for k, t in threads.items()),
        default=0.0,
    )
    publisher_cpu = pct(b["cpu"]["publisher"] - a["cpu"]["publisher"], wall)
    decoder_cpu = pct(b["cpu"]["decoder"] - a["cpu"]["decoder"], wall)
    coordinator_cpu = pct(b["cpu"]["coordinator"] - a["cpu"]["coordinator"], wall)
    worker_cpus = [
        pct(y - x, wall) for x, y in zip(a["cpu"]["workers"], b["cpu"]["workers"], strict=True)
    ]
    viewer_cpu = sum(worker_cpus)

    ratios, joins, packets, bitrates, losses, answers, connects = [], [], 0, [], [], [], []
    rtp_ratios = []
    ticks_per_frame = 90000 / phase.fps
    failed = 0
    counting = 0
    for key, end in b["viewers"].items():
        start = a["viewers"].get(key)
        (vframes, vpkts, apkts, vpayload, join, error, _state, vlost, answer, connected, vts) = end
        if phase.decoder is None or key[0] != phase.decoder.pid:
            counting += 1
        if error is not None or join is None or start is None:
            failed += 1
            continue
        if AUDIO_ONLY:
            ratios.append((apkts - start[2]) / audio_sent if audio_sent > 0 else 0.0)
        else:
            ratios.append((vframes - start[0]) / sent if sent > 0 else 0.0)
        if vts is not None and start[10] is not None:
            expected = ((vts - start[10]) & 0xFFFFFFFF) / ticks_per_frame
            if expected > 0:
                rtp_ratios.append((vframes - start[0]) / round(expected))
        packets += (vpkts - start[1]) + (apkts - start[2])
        lost = vlost - start[7]
        losses.append(lost / (lost + vpkts - start[1]) if lost + vpkts - start[1] else 0.0)
        if vpayload is not None and start[3] is not None:
            bitrates.append((vpayload - start[3]) * 8 / wall / 1000)
        if phase.joined_in.get(key) == step:
            joins.append(join)
            if answer is not None:
                answers.append(answer)
            if connected is not None:
                connects.append(connected)

    def delta(name):
        x, y = a["media"].get(name), b["media"].get(name)
        return None if x is None or y is None else y - x

    return {
        "viewers": n,
        "audio_only": AUDIO_ONLY,
        "server_cpu_pct": rnd(server_cpu, 1),
        "cpu_pct_per_viewer": rnd(server_cpu / n if n else None),
        "server_kernel_cpu_pct": rnd(server_sys, 1),
        "server_busiest_thread_cpu_pct": rnd(busiest, 1),
        "server_threads": len(threads),
        "cpu_pct_per_viewer_marginal": rnd(
            (server_cpu - phase.idle["server_cpu_pct"]) / n if n and phase.idle else None
        ),
        "frames_ratio_min": rnd(min(ratios) if ratios else None, 4),
        "frames_ratio_mean": rnd(statistics.fmean(ratios) if ratios else None, 4),
        # the same, against the frames the RTP timestamps say were in the window
        # (publisher pts step 90000/fps): no window skew, and it sees whole frames
        # a server skipped even when RTP sequence numbers stay continuous
        "frames_ratio_rtp_min": rnd(min(rtp_ratios) if rtp_ratios else None, 4),
        "frames_ratio_rtp_mean": rnd(statistics.fmean(rtp_ratios) if rtp_ratios else None, 4),
        "rtp_video_loss_max": rnd(max(losses) if losses else None, 4),
        # how late the server read its counters at the window's ends (skew of frames_ratio)
        "server_stats_latency_s": [rnd(a["media"]["_latency"]), rnd(b["media"]["_latency"])],
        "join_to_first_frame_p50_s": rnd(percentile(joins, 50)),
        "join_to_first_frame_p95_s": rnd(percentile(joins, 95)),
        "join_to_first_frame_max_s": rnd(max(joins) if joins else None),
        # of which: the WHEP POST's round trip (the server negotiating under load)
        "whep_answer_p50_s": rnd(percentile(answers, 50)),
        "whep_answer_p95_s": rnd(percentile(answers, 95)),
        # ... and until the viewer's ICE + DTLS were up (the rest is waiting for a keyframe)
        "connected_p50_s": rnd(percentile(connects, 50)),
        "connected_p95_s": rnd(percentile(connects, 95)),
        "joined_this_step": len(joins),
        "server_rss_mb": rnd(b["rss_kb"] / 1024, 1),
        "rss_per_viewer_kb": rnd(
            (b["rss_kb"] - phase.idle["server_rss_kb"]) / n if n and phase.idle else None, 1
        ),
        "packets_per_s": rnd(packets / wall, 0),
        "publisher_cpu_pct": rnd(publisher_cpu, 1),
        "viewer_procs_cpu_pct": rnd(viewer_cpu, 1),
        "viewer_procs_max_cpu_pct": rnd(max(worker_cpus) if worker_cpus else None, 1),
        "viewer_cpu_pct_per_counting_viewer": rnd(viewer_cpu / counting if counting else None),
        "decoding_viewer_cpu_pct": rnd(decoder_cpu, 1) if phase.decoder else None,
        "coordinator_cpu_pct": rnd(coordinator_cpu, 1),
        "machine_cpu_pct": rnd(
            server_cpu + publisher_cpu + viewer_cpu + decoder_cpu + coordinator_cpu, 1
        ),
        "machine_busy_pct": rnd(machine_busy, 1),
        "viewers_per_core": rnd(n / (server_cpu / 100), 1) if server_cpu > 0 else None,
        "failed_viewers": failed,
        "video_bitrate_kbps": rnd(statistics.median(bitrates), 0) if bitrates else None,
        "frames_sent": sent,
        "frames_sent_per_s": rnd(sent / wall, 1),
        "frames_published_per_s": rnd(published / wall, 1),
        "window_s": rnd(wall, 2),
        "server_delivered": delta("delivered"),
        "server_dropped": delta("dropped"),
        "keyframes_requested_upstream": delta("keyframes_requested_upstream"),
        "server_viewers_reported": b["media"].get("viewers"),
        # a viewer process above 90 % of its core, or a publisher behind its frame rate
        "load_generator_saturated": (
            any(c > SATURATED_PCT for c in [decoder_cpu, *worker_cpus])
            or published / wall < 0.97 * phase.fps
        ),
        # one event loop: a thread near a full core, or the fan-out behind the publisher,
        # or no CPU left on the machine (then encoders/senders wait for a core)
        "server_saturated": (
            busiest > SATURATED_PCT
            or (published > 0 and sent < 0.97 * published)
            or machine_busy > 0.95 * 100 * (os.cpu_count() or 1)
        ),
        "machine_saturated": machine_busy > 0.95 * 100 * (os.cpu_count() or 1),
    }


async def measure_idle(phase: Phase, seconds: float) -> None:
    a = await snapshot(phase)
    await asyncio.sleep(seconds)
    b = await snapshot(phase)
    wall = b["t"] - a["t"]
    phase.idle = {
        "server_cpu_pct": pct(b["cpu"]["server"] - a["cpu"]["server"], wall),
        "server_rss_kb": b["rss_kb"],
        "publisher_cpu_pct": pct(b["cpu"]["publisher"] - a["cpu"]["publisher"], wall),
        "frames_sent_per_s": (
            b["media"]["frames"].get("video", 0) - a["media"]["frames"].get("video", 0)
        )
        / wall,
    }


def delta(a: dict, b: dict, name: str):
    x, y = a.get(name), b.get(name)
    return None if x is None or y is None else y - x


async def settle(phase: Phase, args, limit: float = 15.0) -> dict:
    """Wait until the server and the viewers run at the publisher's frame rate.

    After a burst of joins the server (and the viewer processes) may still be
    catching up; a window opened then compares a server counter that runs
    ahead with viewers that lag. Returns the snapshot that opens the window.
    """
    deadline = time.monotonic() + limit
    a = await snapshot(phase)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        b = await snapshot(phase)
        wall = b["t"] - a["t"]
        published = (b["published"] - a["published"]) / wall
        sent = (b["media"]["frames"].get("video", 0) - a["media"]["frames"].get("video", 0)) / wall
        got = [
            (row[0] - a["viewers"][key][0]) / wall
            for key, row in b["viewers"].items()
            if key in a["viewers"] and row[4] is not None
        ]
        mean = statistics.fmean(got) if got and not AUDIO_ONLY else sent
        if (
            published > 0
            and abs(sent - published) <= 0.1 * published
            and abs(mean - sent) <= 0.1 * sent
        ):
            return b
        a = b
    log(
        f"{phase.name}: not steady after {limit:.0f} s (server or viewers off the frame rate); "
        "measuring anyway"
    )
    return a


def idle_json(phase: Phase) -> dict:
    idle = phase.idle
    return {
        "server_cpu_pct": rnd(idle.get("server_cpu_pct"), 1),
        "server_rss_mb": rnd(idle.get("server_rss_kb", 0) / 1024, 1),
        "publisher_cpu_pct": rnd(idle.get("publisher_cpu_pct"), 1),
        "frames_sent_per_s": rnd(idle.get("frames_sent_per_s"), 1),
    }
