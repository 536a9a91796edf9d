"""The room bench's JSON: delivery, errors, CPU and the target, from what the run measured."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from .common import changed_files, cpu_model, git
from .room_measure import other_jobs, pct
from .room_stats import Histogram, percentiles

TARGET_P95_MS = 300.0


@dataclass
class Measured:
    """What ``room_runner.run`` gathered: the join, and the chat window between ``a`` and ``b``."""

    started: float  # time.monotonic() at the start of the run
    listeners: int
    joined: int
    join_ms: list[float]
    connect_ms: list[float]
    failures: list
    join_phase: dict
    within_limit: bool  # the senders' schedule stays under the server's chat limit
    a: dict  # room_measure.sample() at the window's start
    b: dict  # ... and at its end
    wall: float
    everyone_a: dict[int, float]  # CPU of every process on the machine
    everyone_b: dict[int, float]
    ours_pids: set[int]  # the server, the workers, this process, the run's database backends
    pg_a: float | None
    pg_b: float | None
    redis_a: float | None
    redis_b: float | None
    chats: list[dict]  # the workers' chat replies
    healthz: list[float]
    acked: list
    sent: int
    expected: int
    reports: list[dict]  # the workers' delivery reports
    rss_mb: float
    problems: dict | None  # room_server.server_log_problems()


def figures(args, m: Measured) -> dict:
    """The JSON printed on stdout."""
    # ---- figures
    delivery = Histogram.merged([r["delivery"] for r in m.reports])
    refused: dict[str, int] = {}
    for c in m.chats:
        for code_, n in c["refused"].items():
            refused[code_] = refused.get(code_, 0) + n
    rate_limited = refused.pop("rate_limited", 0)
    breakdown = {
        "join_failures": len(m.failures),
        "chat_refused": sum(refused.values()),
        "chat_ack_timeouts": sum(c["ack_timeouts"] for c in m.chats),
        "missing_deliveries": sum(r["missing"] for r in m.reports),
        "duplicate_deliveries": sum(r["duplicates"] for r in m.reports),
        "out_of_order_deliveries": sum(r["out_of_order"] for r in m.reports),
        "dropped_connections": sum(len(r["dropped"]) for r in m.reports),
        "server_log_errors": m.problems["errors"] if m.problems else 0,
    }
    errors = sum(breakdown.values())
    worker_cpu = [pct(y - x, m.wall) for x, y in zip(m.a["workers"], m.b["workers"], strict=True)]
    coordinator_cpu = pct(m.b["coordinator"] - m.a["coordinator"], m.wall)
    delivery_summary = delivery.summary((50, 95, 99))
    # per line: the first receiver's latency (the server's work before the broadcast,
    # the database commit included) and last minus first (the broadcast's own length)
    spans: dict[str, list[float]] = {}
    for r in m.reports:
        for key, (lo, hi) in r["spans"].items():
            mine = spans.setdefault(key, [lo, hi])
            mine[0], mine[1] = min(mine[0], lo), max(mine[1], hi)
    p95 = delivery_summary["p95"]
    target_met = (
        errors == 0
        and m.joined == args.clients
        and p95 is not None
        and p95 < TARGET_P95_MS
        and args.clients >= 500
    )
    audience = (
        f"1 host (committee token), {args.senders} members signed in with their "
        f"invites (they send), {m.listeners} "
        + (
            "guests (POST /api/join {meeting_code, name}; they only receive)"
            if args.listeners == "guest"
            else "anonymous viewers (no token, like the watch page opened from the meeting "
            "link without signing in; they only receive)"
        )
    )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "clients": args.clients,
        "senders": args.senders,
        "audience": audience,
        "rate_msgs_per_s": args.rate,
        "duration_s": args.duration,
        "workers": args.workers,
        "join_rate_per_s": args.join_rate,
        "pin_server": args.pin_server,
        "joined": m.joined,
        "join_ms": percentiles(m.join_ms),
        "connect_ms": percentiles(m.connect_ms),
        "delivery_ms": delivery_summary,
        "delivery_first_receiver_ms": percentiles([lo for lo, _ in spans.values()], (50, 95)),
        "delivery_spread_ms": percentiles([hi - lo for lo, hi in spans.values()], (50, 95)),
        "chat_ack_ms": percentiles([v for c in m.chats for v in c["ack_ms"]], (50, 95, 99)),
        "messages_planned": int(round(args.rate * args.duration)),
        "messages_sent": m.sent,
        "messages_acked": len(m.acked),
        "deliveries_expected": m.expected,
        "deliveries_received": sum(r["received"] for r in m.reports),
        # lines whose ack timed out or failed but which reached clients anyway (not errors)
        "deliveries_of_unacked_lines": sum(r["unexpected"] for r in m.reports),
        "errors": errors,
        "error_breakdown": breakdown,
        "chat_refusals": refused,
        "rate_limited": rate_limited,
        "schedule_within_chat_limit": m.within_limit,
        "server_cpu_percent": pct(m.b["server"] - m.a["server"], m.wall),
        # the event loop's thread: on a CPU, and runnable but waiting for one (other
        # processes had the cores); together near 100 % = the loop is saturated
        "server_loop_percent": {
            "on_cpu": pct(m.b["server_loop"][0] - m.a["server_loop"][0], m.wall),
            "waiting_for_cpu": pct(m.b["server_loop"][1] - m.a["server_loop"][1], m.wall),
        },
        # the server's CPU per (line, receiver) while the chat ran: its cost of a delivery
        "server_cpu_us_per_delivery": (
            round((m.b["server"] - m.a["server"]) * 1e6 / (len(m.acked) * m.joined), 1)
            if m.acked and m.joined
            else None
        ),
        "server_rss_mb": m.rss_mb,
        "server_healthz_ms": percentiles(m.healthz, (50, 95)),
        "generator_cpu_percent": round(sum(worker_cpu) + coordinator_cpu, 1),
        "generator": {
            "workers_cpu_percent": worker_cpu,
            "workers_waiting_for_cpu_percent": [
                pct(y[1] - x[1], m.wall)
                for x, y in zip(m.a["workers_loop"], m.b["workers_loop"], strict=True)
            ],
            "coordinator_cpu_percent": coordinator_cpu,
            "loop_lag_ms_p99_max": max((c["loop_lag_ms"]["p99"] or 0) for c in m.chats),
            "loop_lag_ms_max": max((c["loop_lag_ms"]["max"] or 0) for c in m.chats),
            "send_late_ms_max": max((c["send_late_ms"]["max"] or 0) for c in m.chats),
        },
        "machine_busy_percent": pct(m.b["machine"] - m.a["machine"], m.wall),
        "cpus": os.cpu_count(),
        "join_phase": m.join_phase,
        "presence": {
            "presence_events_per_client": percentiles(
                [v for r in m.reports for v in r["presence"]], (50,)
            ),
            "attendance_joined_per_client": percentiles(
                [v for r in m.reports for v in r["attendance"]], (50,)
            ),
        },
        "database": "postgresql" if args.database_url else "sqlite",
        "redis": bool(args.redis_url),
        "target": f"{TARGET_P95_MS:g} ms delivery p95 with 500+ clients and zero errors",
        "target_met": target_met,
        "window_s": round(m.wall, 2),
        "run_seconds": round(time.monotonic() - m.started, 1),
        "machine": machine_info(),
        "code": code_info(),
    }
    ours = result["server_cpu_percent"] + result["generator_cpu_percent"]
    if m.pg_a is not None and m.pg_b is not None:
        result["database_cpu_percent"] = pct(m.pg_b - m.pg_a, m.wall)
        ours += result["database_cpu_percent"]
    if m.redis_a is not None and m.redis_b is not None:
        result["redis_cpu_percent"] = pct(m.redis_b - m.redis_a, m.wall)
        ours += result["redis_cpu_percent"]
    # anything else on the machine during the window (other jobs skew every figure)
    result["machine_other_cpu_percent"] = round(max(0.0, result["machine_busy_percent"] - ours), 1)
    result["other_jobs"] = other_jobs(
        m.everyone_a,
        m.everyone_b,
        m.ours_pids,
        m.wall,
        ("redis-server",) if args.redis_url else (),
    )
    if m.failures:
        result["join_failures_first"] = m.failures[:5]
    dropped = [d for r in m.reports for d in r["dropped"]]
    if dropped:
        result["dropped_first"] = dropped[:5]
    if m.problems:
        result["server_log"] = m.problems
    if delivery.negative:
        result["negative_latencies"] = delivery.negative
    return result


def machine_info() -> dict:
    from importlib.metadata import version

    return {
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_socketio": version("python-socketio"),
        "python_engineio": version("python-engineio"),
        "aiohttp": version("aiohttp"),
        "kernel": platform.release(),
    }


def code_info() -> dict:
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_server_files": changed_files("server"),
    }
