"""What load balancers and monitors poll: ``/healthz`` (can it work) and ``/readyz``.

``/healthz`` is 200 only while the server can do its job: the database takes a
write and, when meetings are recorded, RECORDINGS_DIR takes one too (a full or
read-only disk is a 503 naming it). ``/readyz`` is 200 when the database and
Redis (if configured) answer. The checks run at most once per
:data:`CACHE_SECONDS` whatever the number of pollers, in the background: a
poll answers at once with the latest result (so it also times the event loop,
never a slow disk), and waits only for the very first run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .. import keys
from ..errors import Unavailable
from ..store.db import NotWritable

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: a result is reused this long: pollers cannot turn the probes into load
CACHE_SECONDS = 1.0
#: a check that takes longer than this counts as failed ("timeout")
CHECK_TIMEOUT = 5.0

Report = dict[str, str]


class HealthChecks:
    """The probes behind both routes, each run in the background at most once a second.

    Results are kept per component, so the database's write probe serves both
    ``/healthz`` and ``/readyz`` (it is not run once for each).
    """

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._running: dict[str, asyncio.Future[str | None]] = {}  # component -> latest check
        self._started: dict[str, float] = {}  # component -> when that check started
        self._last: dict[str, str | None] = {}  # component -> its latest state
        self._reported: dict[str, str] = {}  # component -> last state logged
        self._redis: Redis | None = None

    async def health(self) -> Report:
        database, recordings = await asyncio.gather(
            self._cached("database", self._database), self._cached("recordings", self._recordings)
        )
        assert database is not None and recordings is not None, "these checks name a state"
        return {"database": database, "recordings": recordings}

    async def ready(self) -> Report:
        database, redis = await asyncio.gather(
            self._cached("database", self._database), self._cached("redis", self._redis_state)
        )
        assert database is not None, "the database check names a state"
        report = {"database": database}
        if redis is not None:
            report["redis"] = redis
        return report

    async def _cached(self, name: str, run: Callable[[], Awaitable[str | None]]) -> str | None:
        now = asyncio.get_running_loop().time()
        running = self._running.get(name)
        if (running is None or running.done()) and (
            now - self._started.get(name, now - CACHE_SECONDS - 1) > CACHE_SECONDS
        ):
            running = self._running[name] = asyncio.ensure_future(self._remember(name, run))
            self._started[name] = now
        if name in self._last:
            return self._last[name]
        assert running is not None, "started above: no state is known yet"
        return await asyncio.shield(running)

    async def _remember(self, name: str, run: Callable[[], Awaitable[str | None]]) -> str | None:
        self._last[name] = state = await run()
        return state

    async def _database(self) -> str:
        try:
            await asyncio.wait_for(self._app[keys.DATABASE].probe_writable(), CHECK_TIMEOUT)
        except NotWritable as exc:
            return self._note("database", exc.state, str(exc))
        except TimeoutError:
            return self._note("database", "timeout", f"no answer in {CHECK_TIMEOUT:g} s")
        except Exception as exc:  # report, don't crash: this is what load balancers poll
            return self._note("database", "unreachable", str(exc) or type(exc).__name__)
        return self._note("database", "ok")

    async def _recordings(self) -> str:
        if not self._app[keys.SETTINGS].record_meetings:
            return "off"
        loop = asyncio.get_running_loop()
        try:
            problem = await asyncio.wait_for(
                loop.run_in_executor(None, self._app[keys.ARCHIVE].check_disk), CHECK_TIMEOUT
            )
        except TimeoutError:
            problem = "timeout"
        if not problem:
            return self._note("recordings", "ok")
        state = problem.split(" (")[0]
        return self._note("recordings", state, problem)

    async def _redis_state(self) -> str | None:
        url = self._app[keys.SETTINGS].redis_url
        if not url:
            return None
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await asyncio.wait_for(self._redis.ping(), CHECK_TIMEOUT)
        except Exception as exc:
            return self._note("redis", "unreachable", str(exc) or type(exc).__name__)
        return self._note("redis", "ok")

    def _note(self, component: str, state: str, detail: str = "") -> str:
        """Log a component's state when it changes (not on every poll)."""
        if self._reported.get(component, "ok") != state:
            if state == "ok":
                logger.warning("health: %s is ok again", component)
            else:
                logger.warning("health: %s is %s: %s", component, state, detail)
        self._reported[component] = state
        return state

    async def close(self) -> None:
        running = [run for run in self._running.values() if not run.done()]
        for run in running:
            run.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


HEALTH: web.AppKey[HealthChecks] = web.AppKey("health", HealthChecks)


def setup(app: web.Application) -> None:
    app[HEALTH] = HealthChecks(app)
    app.on_shutdown.append(lambda app: app[HEALTH].close())
    app.router.add_routes(routes)


def _answer(report: Report) -> web.Response:
    failed = [name for name, state in report.items() if state not in ("ok", "off")]
    body: dict = {"ok": not failed, **report}
    if failed:
        body["failed"] = failed
        error = Unavailable(
            "not ready: {failed}",
            params={"failed": "; ".join(f"{name}: {report[name]}" for name in failed)},
        )
        body["error"] = error.as_dict()
    return web.json_response(
        body, status=Unavailable.status if failed else 200, headers={"Cache-Control": "no-store"}
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the database and the recordings disk take writes, else 503 naming which not."""
    return _answer(await request.app[HEALTH].health())


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the database (a write) and Redis (if configured) answer, else 503."""
    return _answer(await request.app[HEALTH].ready())
