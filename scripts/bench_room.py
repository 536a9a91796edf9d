#!/usr/bin/env python3
"""Benchmark one live meeting's room: N socket.io clients join and chat flows to all.

    .venv/bin/python scripts/bench_room.py [--clients 500] [--senders 50] [--rate 10]
        [--duration 30] [--workers W] [--join-rate 50] [--listeners anonymous|guest]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]
        [--redis-url redis://127.0.0.1:6379/0] [--timeout 300] [--quiet-wait 600]

Starts the real server (``cunhui serve``) on 127.0.0.1 with a temporary
DATA_DIR, a committee account and a live meeting that allows guests; adds
``--senders`` members and signs them in with their invites; then ``--workers``
processes hold the socket.io clients (websocket only, no reconnection): the host,
the members, and anonymous viewers for the rest. Measured:

- join: connect + ``join`` ack per client, clients ramped at ``--join-rate``;
- chat: the members send ``chat:send`` at ``--rate`` messages/s in total for
  ``--duration`` s (each member every senders/rate seconds, inside the server's
  limit of 5 per 10 s); every client times each ``chat:message`` it receives
  against the send time written in the text (time.time(), one machine);
- errors: failed joins, refused or unanswered chat acks, lines a client never
  got, duplicates, out-of-order lines, dropped connections, errors in the
  server's log (``rate_limited`` acks are counted apart);
- CPU over the chat window from /proc: the server's, the load generator's
  (worker processes + coordinator), and with PostgreSQL its backends'.

Prints one JSON object on stdout; progress goes to stderr. Exit status 0, or 1
when the run failed, or 2 when a run of 500+ clients missed the target (delivery
p95 under 300 ms, zero errors). See scripts/bench/room_runner.py.

Internal entry point: ``bench_room.py --worker clients`` (a client process).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):  # the repo and scripts/ (bench/)
    if path not in sys.path:
        sys.path.insert(0, path)


def default_workers() -> int:
    """Client processes: 2 per core, at least 2 and at most 8.

    The server uses one core at most (one event loop); with two cores the
    generator shares the other with it, and a few processes keep each event
    loop's burst short (a broadcast wakes every client of a process at once).
    """
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_room.py",
        description="Benchmark one live meeting's socket.io room: joins and chat delivery.",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=500,
        help="socket.io clients in the meeting, host included (default 500)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=50,
        help="of which members who write in the chat (default 50)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="chat messages per second, all senders together (default 10)",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of chat (default 30)")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help=f"client processes (default 2 per core, 2-8: here {default_workers()})",
    )
    parser.add_argument(
        "--join-rate",
        type=float,
        default=50.0,
        help="clients starting to join per second (default 50)",
    )
    parser.add_argument(
        "--listeners",
        choices=("anonymous", "guest"),
        default="anonymous",
        help="the clients that only receive: anonymous viewers (default; no "
        "token) or guests (named; each join is recorded on the timeline)",
    )
    parser.add_argument(
        "--database-url",
        help="run on PostgreSQL: an admin URL on 127.0.0.1 such as "
        "postgresql://postgres@127.0.0.1:5432/test; a fresh database is "
        "created for the run and dropped after (default: SQLite)",
    )
    parser.add_argument(
        "--redis-url",
        help="run with REDIS_URL set (socket.io through Redis), e.g. redis://127.0.0.1:6379/0",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds before everything is stopped (default 300)",
    )
    parser.add_argument(
        "--join-timeout",
        type=float,
        default=20.0,
        help="seconds a client may take to connect, and again to join",
    )
    parser.add_argument(
        "--ack-timeout", type=float, default=10.0, help="seconds a chat:send may wait for its ack"
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds between the last join and the chat"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=15.0,
        help="seconds after the chat to wait for late deliveries",
    )
    parser.add_argument(
        "--server-log-level", default="WARNING", help="the server's LOG_LEVEL (default WARNING)"
    )
    parser.add_argument(
        "--pin-server",
        type=int,
        metavar="CPU",
        help="run the server on this core alone and the load generator on "
        "the others (default: let the kernel share the cores)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (other "
        "jobs skew the figures; default 0: start at once)",
    )
    parser.add_argument(
        "--profile-server",
        metavar="FILE",
        help="run the server under cProfile and write its stats to FILE "
        "(read with python -m pstats; slows the server down)",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the temporary directory with the server's and workers' logs",
    )
    args = parser.parse_args(argv)
    if args.clients < 2 or args.senders < 1 or args.senders > args.clients - 1:
        parser.error("need --senders >= 1 and --clients >= senders + 1 (the host)")
    for name in ("rate", "duration", "join_rate", "timeout", "join_timeout", "ack_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.pin_server is not None and args.pin_server not in os.sched_getaffinity(0):
        parser.error(f"--pin-server: no core {args.pin_server} here")
    args.workers = min(args.workers, args.clients)

    from bench.room_runner import loopback_url

    if args.database_url:
        loopback_url(args.database_url, ("postgresql", "postgres"), "--database-url")
    if args.redis_url:
        loopback_url(args.redis_url, ("redis",), "--redis-url")
    return args


def main(argv: list[str]) -> int:
    if argv == ["--worker", "clients"]:
        from bench import room_clients

        return room_clients.main()
    args = parse_args(argv)
    from bench import room_runner

    return room_runner.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
