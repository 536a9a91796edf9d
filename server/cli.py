"""``cunhui``: run the server and administer accounts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import sys
import threading
import time

from .errors import CunhuiError
from .settings import ConfigError, Settings

logger = logging.getLogger(__name__)

#: SIGTERM (a deploy) or SIGINT: the process is gone within this many seconds, whatever hangs
STOP_DEADLINE = 9.5
#: requests still running when the server stops (sockets are dropped before) get this long
REQUESTS_GRACE = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cunhui", description="Cunhui village meetings")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="address to listen on (default: $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: $PORT or 8080)")

    admin = commands.add_parser("admin", help="administer accounts")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create_user = admin_commands.add_parser("create-user", help="create a committee account")
    create_user.add_argument("username")
    create_user.add_argument("--password", required=True)
    create_user.add_argument(
        "--village", help="the account's village (default: the only one; created if new)"
    )

    verify = commands.add_parser(
        "verify", help="recompute a meeting's audit chain; name the first entry that does not match"
    )
    verify.add_argument("meeting_id", type=int)

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"cunhui: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins at INFO on every start: only say what ran.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "verify":
        return asyncio.run(_verify(settings, args.meeting_id))
    return asyncio.run(_create_user(settings, args.username, args.password, args.village))


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    """Run the app until SIGINT or SIGTERM (like ``web.run_app``, with guarded connections)."""
    from .app import create_app
    from .http.connections import ConnectionGuard

    host = host or settings.host
    port = port or settings.port
    _raise_descriptor_limit()
    guard = ConnectionGuard(settings.http_header_timeout, exempt=settings.trusted_proxies)
    app = create_app(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    serving = loop.create_task(_run_server(app, guard, host, port))
    try:
        loop.run_until_complete(serving)
    except KeyboardInterrupt:
        pass
    finally:
        if not serving.done():
            serving.cancel()
            loop.run_until_complete(asyncio.gather(serving, return_exceptions=True))
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    # Everything is closed: skip Python's own teardown (aiortc, PyAV, numpy...), which
    # takes seconds on a busy machine and counts against a deploy's stop timeout.
    logger.info("exiting")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def _run_server(app, guard, host: str, port: int) -> None:
    from aiohttp import web

    from .http.connections import GuardedAppRunner

    # a signal during start-up (migrations) lets it finish, then stops cleanly
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(number: int) -> None:
        if not stop.is_set():
            logger.info("%s: stopping", signal.Signals(number).name)
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping, number)
    # a restart should not wait on idle keep-alive clients, nor long on busy ones
    runner = GuardedAppRunner(app, guard, shutdown_timeout=REQUESTS_GRACE)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        _announce(host, port)
        await stop.wait()
    finally:
        # stops listening, then app.py's _hang_up: sockets told server:restarting and
        # dropped, recordings closed, peers hung up; then the requests still running
        began = time.monotonic()
        _exit_after(STOP_DEADLINE)  # not during start-up: migrations are never cut short
        await runner.cleanup()
        logger.info("stopped in %.1f s", time.monotonic() - began)


def _exit_after(seconds: float) -> None:
    """Whatever hangs while stopping (a peer, a request, a database), exit after ``seconds``.

    A supervisor or deploy waits for the exit; a part left open is finalised at the next
    start (server/archive/recovery.py). Status 1: the stop was not clean.
    """

    def give_up() -> None:
        logger.error("the server did not stop within %s s: exiting now", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def _raise_descriptor_limit() -> None:
    """Use the descriptors the system allows (the soft limit is often 1,024 of far more)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


def _announce(host: str, port: int) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Cunhui is running on http://{shown}:{port}  (Ctrl+C to stop)", flush=True)


async def _create_user(
    settings: Settings, username: str, password: str, village: str | None
) -> int:
    from .services import accounts
    from .store import Database

    database = Database(settings.database_url)
    try:
        await database.migrate()
        async with database.session() as db:
            user = await accounts.create_user(db, username, password, village)
    except CunhuiError as exc:
        print(f"cunhui: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await database.close()
    print(f"created committee account {user.username!r} (id {user.id})")
    return 0


async def _verify(settings: Settings, meeting_id: int) -> int:
    """Exit 0 when the chain holds (printing the digest), 1 naming the first bad entry."""
    from .services import meetings, timeline
    from .store import Database

    database = Database(settings.database_url)
    try:
        await database.migrate()  # as the server would: an old database gets its chain
        async with database.session() as db:
            meeting = await meetings.get_meeting(db, meeting_id)
            verdict = await timeline.verify_chain(db, meeting)
    except CunhuiError as exc:
        print(f"cunhui: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await database.close()
    if verdict.ok:
        print(
            f"meeting {meeting_id}: {verdict.events} events, chain intact; digest {verdict.digest}"
        )
        return 0
    print(
        f"meeting {meeting_id}: TAMPERED at entry {verdict.first_bad_seq}: {verdict.reason}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
