"""The room benchmark's coordinator: server, audience, join ramp, chat, figures.

Everything runs on 127.0.0.1: the real server (``cunhui serve``, its own
process group, a temporary DATA_DIR), and ``--workers`` processes of socket.io
clients (``room_clients``). The audience is what a live village meeting looks
like: the clerk's host page (a committee token), ``--senders`` members signed in
with their invites (they write in the chat) and the rest watching from the
meeting link without signing in (anonymous viewers, who only receive), or, with
``--listeners guest``, as named guests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from .common import tree
from .room_measure import (
    all_process_cpu,
    healthz_latencies,
    pct,
    pg_backend_cpu,
    redis_cpu,
    sample,
    wait_for_quiet,
)
from .room_report import Measured, figures
from .room_server import (
    Api,
    State,
    cleanup,
    guest_tokens,
    log,
    member_tokens,
    prepare_meeting,
    server_log_problems,
    start_server,
    start_workers,
)
from .room_stats import percentiles

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: the server's chat limit (server/socket_guard.py CHAT_BURST, CHAT_WINDOW), for the schedule check
CHAT_BURST, CHAT_WINDOW = 5, 10.0


def loopback_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    parts = urlsplit(url)
    if not parts.scheme.startswith(schemes):
        raise SystemExit(f"{what} must start with {' or '.join(schemes)}: {url}")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"{what} must point at 127.0.0.1 (loopback only): {url}")


# --------------------------------------------------------------------------
# The meeting and its audience


def sender_slots(clients: int, senders: int) -> list[int]:
    """Client indexes of the senders, spread evenly over the join order after the host (0)."""
    return [1 + (i * (clients - 1)) // senders for i in range(senders)]


# --------------------------------------------------------------------------
# The run


async def run(st: State, args) -> dict:
    started = time.monotonic()
    import aiohttp

    if args.pin_server is not None:  # this process and the client workers on the other cores
        others = set(os.sched_getaffinity(0)) - {args.pin_server}
        if not others:
            raise RuntimeError(f"--pin-server {args.pin_server}: no other core left")
        os.sched_setaffinity(0, others)

    st.tmp = Path(tempfile.mkdtemp(prefix="bench-room-"))
    log(f"logs in {st.tmp}")
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http:
        base, password = await start_server(st, args, http)
        api = Api(http, base)
        meeting_id, code, host_token = await prepare_meeting(api, password)
        t = time.monotonic()
        members = await member_tokens(api, host_token, args.senders)
        listeners = args.clients - 1 - args.senders
        guests = await guest_tokens(api, code, listeners) if args.listeners == "guest" else []
        log(
            f"meeting {meeting_id} live; {args.senders} members"
            + (f" and {listeners} guests" if guests else "")
            + f" signed in in {time.monotonic() - t:.1f} s"
        )

        slots = set(sender_slots(args.clients, args.senders))
        specs, member_iter, guest_iter, sender_no = [], iter(members), iter(guests), 0
        for index in range(args.clients):
            if index == 0:
                specs.append({"index": 0, "role": "committee", "token": host_token})
            elif index in slots:
                specs.append(
                    {
                        "index": index,
                        "role": "member",
                        "token": next(member_iter),
                        "sender": sender_no,
                    }
                )
                sender_no += 1
            elif args.listeners == "guest":
                specs.append({"index": index, "role": "guest", "token": next(guest_iter)})
            else:
                specs.append({"index": index, "role": "viewer"})

        await start_workers(st, args.workers, args.timeout)
        await asyncio.gather(
            *(
                w.call(
                    "setup",
                    timeout=60,
                    base=base,
                    meeting_id=meeting_id,
                    clients=[s for s in specs if s["index"] % args.workers == i],
                )
                for i, w in enumerate(st.workers)
            )
        )

        # ---- join: client i at t0 + i / join_rate, spread over the workers
        log(f"joining {args.clients} clients at {args.join_rate:g}/s over {args.workers} workers")
        t0 = time.monotonic() + 0.5
        a = sample(st)
        ramp = args.clients / args.join_rate
        joins = await asyncio.gather(
            *(
                w.call(
                    "join",
                    timeout=ramp + args.join_timeout * 2 + 30,
                    t0=t0,
                    rate=args.join_rate,
                    each_timeout=args.join_timeout,
                )
                for w in st.workers
            )
        )
        b = sample(st)
        join_wall = b["t"] - a["t"]
        join_ms = [v for j in joins for v in j["join_ms"]]
        connect_ms = [v for j in joins for v in j["connect_ms"]]
        failures = [f for j in joins for f in j["failures"]]
        joined = sum(j["joined"] for j in joins)
        log(
            f"joined {joined}/{args.clients} in {join_wall:.1f} s; join p50/p95/max "
            f"{percentiles(join_ms)} ms" + (f"; first failure: {failures[0]}" if failures else "")
        )
        join_phase = {
            "seconds": round(join_wall, 1),
            "server_cpu_percent": pct(b["server"] - a["server"], join_wall),
            "generator_late_ms_max": round(max(j["late_ms_max"] for j in joins), 1),
        }
        await asyncio.sleep(args.settle)  # presence bursts and attendance broadcasts end

        # ---- chat: a steady total rate from the senders, measured over [start, end]
        per_sender_interval = args.senders / args.rate
        within_limit = per_sender_interval * (CHAT_BURST - 1) > CHAT_WINDOW
        log(
            f"chat: {args.rate:g} msg/s for {args.duration:g} s from {args.senders} senders "
            f"(each every {per_sender_interval:.1f} s"
            + ("" if within_limit else "; ABOVE the server's limit of 5 per 10 s")
            + ")"
        )
        start = time.monotonic() + 1.0
        end = start + args.duration
        chats_task = asyncio.gather(
            *(
                w.call(
                    "chat",
                    timeout=args.duration + args.ack_timeout + 30,
                    start=start,
                    rate=args.rate,
                    duration=args.duration,
                    senders=args.senders,
                    ack_timeout=args.ack_timeout,
                )
                for w in st.workers
            )
        )
        healthz_task = asyncio.ensure_future(healthz_latencies(http, base, end))
        st.tasks += [chats_task, healthz_task]
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        a = sample(st)
        everyone_a = all_process_cpu()
        pg_a, redis_a = await pg_backend_cpu(st), redis_cpu(args.redis_url)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        b = sample(st)
        everyone_b = all_process_cpu()
        ours_pids = set(tree(st.server.pid)) | {w.pid for w in st.workers} | {os.getpid()}
        pg_b, redis_b = await pg_backend_cpu(st), redis_cpu(args.redis_url)
        chats = await chats_task
        healthz = await healthz_task
        wall = b["t"] - a["t"]
        acked = [k for c in chats for k in c["acked"]]
        sent = sum(c["sent"] for c in chats)

        # ---- drain: wait (bounded) until every receiver has every acknowledged line
        expected = len(acked) * joined
        received = 0
        drain_until = time.monotonic() + args.drain
        while time.monotonic() < drain_until:
            received = sum(
                p["received"]
                for p in await asyncio.gather(
                    *(w.call("progress", timeout=30, acked=acked) for w in st.workers)
                )
            )
            if received >= expected:
                break
            await asyncio.sleep(0.25)
        reports = await asyncio.gather(
            *(w.call("report", timeout=60, acked=acked) for w in st.workers)
        )
        rss_mb = round(b["rss_kb"] / 1024, 1)
        log("leaving")
        try:
            await asyncio.gather(*(w.call("leave", timeout=60) for w in st.workers))
        except Exception as exc:  # noqa: BLE001 - the figures are in already
            log(f"leave: {exc!r}")
        await asyncio.sleep(1.0)
        problems = server_log_problems(st)

    measured = Measured(
        started=started,
        listeners=listeners,
        joined=joined,
        join_ms=join_ms,
        connect_ms=connect_ms,
        failures=failures,
        join_phase=join_phase,
        within_limit=within_limit,
        a=a,
        b=b,
        wall=wall,
        everyone_a=everyone_a,
        everyone_b=everyone_b,
        ours_pids=ours_pids | st.pg_pids,
        pg_a=pg_a,
        pg_b=pg_b,
        redis_a=redis_a,
        redis_b=redis_b,
        chats=chats,
        healthz=healthz,
        acked=acked,
        sent=sent,
        expected=expected,
        reports=reports,
        rss_mb=rss_mb,
        problems=problems,
    )
    return figures(args, measured)


def main(args) -> int:
    st = State()

    def hard_stop(*_) -> None:  # the event loop itself is stuck: end everything now
        st.children.kill_all(grace=1)
        print(
            json.dumps(
                {
                    "error": f"hard timeout after {args.timeout:g} s; logs in "
                    f"{st.tmp}; PostgreSQL database left: {st.pg_database}"
                }
            )
        )
        sys.stdout.flush()
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout + args.quiet_wait) + 30)

    async def go() -> dict:
        quiet = None
        if args.quiet_wait > 0:
            log(f"waiting up to {args.quiet_wait:g} s for the machine to be idle")
            quiet = await wait_for_quiet(args.quiet_wait)
        try:
            result = await asyncio.wait_for(run(st, args), args.timeout)
            if quiet is not None:
                result["machine_quiet_at_start"] = quiet
            return result
        except TimeoutError:
            st.failed = True
            return {
                "error": f"timeout: the run took longer than --timeout {args.timeout:g} s",
                "server_log": server_log_problems(st),
            }
        except Exception as exc:  # noqa: BLE001 - reported as JSON, with the logs kept
            st.failed = True
            return {"error": f"{type(exc).__name__}: {exc}", "server_log": server_log_problems(st)}
        finally:
            await cleanup(st, args.keep_logs)

    result = asyncio.run(go())
    signal.alarm(0)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    sys.stdout.flush()
    if "error" in result:
        return 1
    return 0 if result["target_met"] or args.clients < 500 else 2
