"""The coordinator: starts the servers, the publisher and the viewer workers, ramps viewers.

What is measured is in ``measure``, the servers in ``servers``, the JSON and the table in
``report``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import Children, Worker, log, tail, tree_rss_kb
from .measure import delta, idle_json, measure_idle, rnd, settle, snapshot, summarize
from .report import code_info, conclude, human_table, machine_info, params, server_log
from .servers import Target, start_baseline, start_cunhui, stop_server


@dataclass
class Phase:
    """One design under test: its server, publisher, viewer workers and results."""

    name: str  # "fanout" or "relay"
    fps: float
    target: Target
    publisher: Worker
    workers: list[Worker]
    decoder: Worker | None
    counts: dict[int, int] = field(default_factory=dict)  # worker pid -> viewers
    results: list[dict] = field(default_factory=list)
    idle: dict = field(default_factory=dict)
    # (worker pid, index) -> step number in which the viewer joined
    joined_in: dict[tuple[int, int], int] = field(default_factory=dict)
    decoded: dict | None = None  # the decoding viewer's last report
    join_info: dict = field(default_factory=dict)
    publisher_stats: dict = field(default_factory=dict)

    @property
    def all_workers(self) -> list[Worker]:
        return ([self.decoder] if self.decoder else []) + self.workers

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --------------------------------------------------------------------------
# Ramp


async def add_viewers(phase: Phase, n: int, step: int, args) -> None:
    """Bring the phase to ``n`` viewers (existing ones stay), then wait for first frames."""
    plan: dict[int, int] = {}
    need = n - phase.total
    if need <= 0:
        return
    workers_by_pid = {w.pid: w for w in phase.all_workers}
    if phase.decoder is not None and phase.counts.get(phase.decoder.pid, 0) == 0:
        plan[phase.decoder.pid] = 1  # the first viewer of the run is the decoding one
        need -= 1
    for _ in range(need):
        pid = min(phase.workers, key=lambda w: phase.counts.get(w.pid, 0) + plan.get(w.pid, 0)).pid
        plan[pid] = plan.get(pid, 0) + 1

    codec = args.codec_mime
    media_before = await phase.target.media()
    before = {pid: phase.counts.get(pid, 0) for pid in plan}
    t0 = time.monotonic()
    replies = await asyncio.gather(
        *(
            workers_by_pid[pid].call(
                "join",
                timeout=args.first_frame_timeout + 120,
                base=phase.target.base,
                meeting=phase.target.meeting,
                codec=codec,
                count=count,
                batch=args.join_batch,
                decode=(phase.decoder is not None and pid == phase.decoder.pid),
            )
            for pid, count in plan.items()
        )
    )
    errors = [e for r in replies for e in r["errors"]]
    for pid, count in plan.items():
        phase.counts[pid] = before[pid] + count
        for index in range(before[pid], before[pid] + count):
            phase.joined_in[(pid, index)] = step
    log(
        f"{phase.name}: {n} viewers: WHEP posts done in {time.monotonic() - t0:.1f} s"
        + (f", {len(errors)} errors, first: {errors[0]}" if errors else "")
    )

    new = {key for key, s in phase.joined_in.items() if s == step}
    deadline = time.monotonic() + args.first_frame_timeout
    waiting = len(new)
    while time.monotonic() < deadline:
        snaps = await asyncio.gather(*(w.call("snapshot", timeout=60) for w in phase.all_workers))
        waiting = 0
        for worker, snap in zip(phase.all_workers, snaps, strict=True):
            for index, row in enumerate(snap["viewers"]):
                if (worker.pid, index) in new and row[5] is None and row[4] is None:
                    waiting += 1
        if waiting == 0:
            break
        if not phase.target.alive():
            raise RuntimeError(phase.target.death())
        await asyncio.sleep(0.5)
    media_after = await phase.target.media()
    phase.join_info = {
        "join_phase_s": rnd(time.monotonic() - t0, 2),
        "join_keyframe_requests": delta(media_before, media_after, "keyframe_requests"),
        "join_keyframes_requested_upstream": delta(
            media_before, media_after, "keyframes_requested_upstream"
        ),
        # server side: frames each viewer waited, connected, for a keyframe
        "keyframe_wait_frames": media_after.get("keyframe_wait_frames"),
    }
    log(
        f"{phase.name}: {n} viewers: first frames after {time.monotonic() - t0:.1f} s"
        + (f" ({waiting} still without video: counted as failed)" if waiting else "")
    )


async def run_phase(phase: Phase, ns: list[int], args, deadline: float) -> None:
    log(f"{phase.name}: measuring the server with the publisher only")
    await measure_idle(phase, min(args.seconds, 5.0))
    for step, n in enumerate(sorted(set(ns)), start=1):
        if time.monotonic() > deadline:
            log(f"{phase.name}: time budget spent, skipping N={n} and above")
            phase.results.append({"viewers": n, "skipped": "time budget (--max-minutes)"})
            continue
        await add_viewers(phase, n, step, args)
        await asyncio.sleep(args.settle)
        a = await settle(phase, args)
        await asyncio.sleep(args.seconds)
        b = await snapshot(phase)
        summary = summarize(phase, n, step, a, b)
        summary.update(phase.join_info)
        if b["decoded"] is not None:
            phase.decoded = b["decoded"]
        phase.results.append(summary)
        log(
            f"{phase.name}: N={n}: server {summary['server_cpu_pct']} % "
            f"({summary['cpu_pct_per_viewer']} %/viewer), frames min "
            f"{summary['frames_ratio_min']}, viewer procs {summary['viewer_procs_cpu_pct']} %"
        )
        if not phase.target.alive():
            raise RuntimeError(phase.target.death())


async def leave_all(phase: Phase) -> dict:
    """DELETE every viewer; then check the server forgot them and how much memory it kept."""
    await asyncio.gather(*(w.call("leave", timeout=120) for w in phase.all_workers))
    phase.counts.clear()
    viewers = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        viewers = (await phase.target.media()).get("viewers")
        if viewers == 0:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    return {
        "server_viewers_after_delete": viewers,
        "server_rss_mb_after_delete": rnd(tree_rss_kb(phase.target.pids()) / 1024, 1),
    }


async def start_phase(
    name: str, target: Target, args, tmp: Path, children: Children, decoder: bool
) -> Phase:
    publisher = await Worker.start("publisher", tmp / f"{name}-publisher.log", children)
    workers = [
        await Worker.start(
            "viewers",
            tmp / f"{name}-viewers-{i}.log",
            children,
            env={"BENCH_COALESCE_MS": str(args.viewer_coalesce_ms)},
        )
        for i in range(args.viewer_procs)
    ]
    dec = await Worker.start("viewers", tmp / f"{name}-decoder.log", children) if decoder else None
    phase = Phase(name, args.fps, target, publisher, workers, dec)
    info = await publisher.call(
        "publish",
        timeout=90,
        base=target.base,
        meeting=target.meeting,
        token=target.token,
        codec=args.codec_mime,
        width=args.width,
        height=args.height,
        fps=args.fps,
        bitrate=args.bitrate,
        x264_preset=args.x264_preset,
    )
    log(f"{name}: publisher connected ({info['width']}x{info['height']})")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait for frames to flow through the server
        media = await target.media()
        if media.get("frames", {}).get("video", 0) > 10:
            break
        await asyncio.sleep(0.25)
    else:
        raise RuntimeError(
            f"{name}: no video frames reached the server: {media}\n"
            f"{tail(target.log)}\n{tail(publisher.log)}"
        )
    return phase


async def stop_phase(phase: Phase, children: Children) -> None:
    stats = {}
    try:
        stats = await phase.publisher.call("stats", timeout=10)
    except Exception:
        pass
    phase.publisher_stats = stats
    for worker in phase.all_workers + [phase.publisher]:
        await worker.stop(children)


# --------------------------------------------------------------------------
# The whole run


async def run(args) -> dict:
    import aiohttp

    tmp = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    children = Children()
    result: dict = {
        "machine": machine_info(),
        "code": code_info(),
        "params": params(args),
    }
    deadline = time.monotonic() + args.max_minutes * 60
    started = time.monotonic()
    targets: list[Target] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # end via finally, killing every child
        loop.add_signal_handler(sig, _cancel_main)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            if args.viewers:
                log(
                    "fan-out: starting the Cunhui server (RECORD_MEETINGS="
                    f"{int(args.fanout_recording)})"
                )
                target = await start_cunhui(http, tmp, children, record=args.fanout_recording)
                targets.append(target)
                phase = await start_phase("fanout", target, args, tmp, children, decoder=True)
                try:
                    await run_phase(phase, args.viewers, args, deadline)
                    result["fanout_after_delete"] = await leave_all(phase)
                    result["fanout_idle"] = idle_json(phase)
                finally:
                    await stop_phase(phase, children)
                    result["fanout_publisher"] = phase.publisher_stats
                    for row in phase.results:  # recording + live HLS on that server?
                        row["recording"] = args.fanout_recording
                    result["fanout"] = phase.results
                    result["decoding_viewer"] = phase.decoded
                    server_log(result, "fanout_server_log", target)
                    stop_server(target, children)
            if args.relay_viewers:
                log("relay: starting the MediaRelay baseline server")
                target = await start_baseline(http, tmp, children, args.bitrate)
                targets.append(target)
                phase = await start_phase("relay", target, args, tmp, children, decoder=False)
                try:
                    await run_phase(
                        phase, args.relay_viewers, args, max(deadline, time.monotonic() + 120)
                    )
                    result["relay_after_delete"] = await leave_all(phase)
                    result["relay_idle"] = idle_json(phase)
                finally:
                    await stop_phase(phase, children)
                    result["relay_publisher"] = phase.publisher_stats
                    result["relay"] = phase.results
                    server_log(result, "relay_server_log", target)
                    stop_server(target, children)
            if args.recording_compare:
                from .recording import compare

                result["recording"] = await compare(http, tmp, children, args)
    except BaseException as exc:
        result["error"] = (
            "interrupted (SIGINT/SIGTERM)"
            if isinstance(exc, asyncio.CancelledError)
            else f"{type(exc).__name__}: {exc}"
        )
        for target in targets:
            death = target.death()
            if death and death not in result["error"]:
                result["error"] += "\n" + death
        log(f"run failed: {result['error']}")
        result.setdefault("fanout", [])
        result.setdefault("relay", [])
    finally:
        children.kill_all()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if args.keep_logs:
            result["logs_dir"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    conclude(result, args)
    result["run_seconds"] = round(time.monotonic() - started, 1)
    return result


def _cancel_main() -> None:
    for task in asyncio.all_tasks():
        if task.get_name() == "bench-main":
            task.cancel()


def main(args) -> int:
    args.codec_mime = "video/h264" if args.codec == "h264" else "video/vp8"

    async def go():
        asyncio.current_task().set_name("bench-main")
        return await run(args)

    result = asyncio.run(go())
    print(json.dumps(result, indent=2, ensure_ascii=False))
    sys.stdout.flush()
    if not args.json_only:
        print(human_table(result), file=sys.stderr)
    return 1 if result.get("error") else 0
