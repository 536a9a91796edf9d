"""The application factory: ``create_app(settings)`` builds everything, globals-free."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from media import MediaHub, install_aiortc_patches

from . import keys
from .archive import Archive
from .http import api, assets, health, media, members, minutes, pages, replays
from .http.compression import compression_middleware
from .http.errors import error_middleware
from .http.proxies import forwarded_middleware
from .i18n import Catalogs
from .live import Live
from .realtime import Realtime
from .services import identity
from .services.tokens import TokenService
from .settings import Settings
from .sockets import SocketAudience, drop_for_restart, socket_server
from .store import Database

logger = logging.getLogger(__name__)

#: JSON bodies are small; SDP has its own tighter limit in http/media.py
MAX_BODY_BYTES = 256 * 1024
#: on shutdown, the recordings get this long to close their files and the peers to hang
#: up; server/cli.py's STOP_DEADLINE bounds the whole stop
CLOSE_RECORDINGS_SECONDS = 4.0
HANG_UP_PEERS_SECONDS = 2.0


def create_app(settings: Settings) -> web.Application:
    settings = settings.with_secret()
    install_aiortc_patches()  # process-wide, idempotent: receivers hand over encoded frames
    # outermost but for the proxy headers: pages, JSON and errors leave compressed
    middlewares = [compression_middleware, error_middleware, pages.locale_middleware]
    if settings.trusted_proxies:
        middlewares.insert(0, forwarded_middleware(settings.trusted_proxies))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[keys.SETTINGS] = settings
    app[keys.TOKENS] = TokenService(
        settings.secret_key,
        settings.token_max_age,
        lifetimes={
            identity.MEMBER: identity.MEMBER_SESSION_SECONDS,
            identity.DEVICE: identity.DEVICE_SECONDS,
        },
    )
    # before _live: the socket.io edge answers refusals in each socket's language
    app[keys.CATALOGS] = catalogs = Catalogs(settings.web_dir / "translations")
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_media)
    _live(app, settings)
    app[keys.ARCHIVE] = Archive(settings, app[keys.LIVE].emit_transient)
    app.on_startup.append(lambda app: app[keys.REALTIME].check_redis())
    app.on_startup.append(
        lambda app: app[keys.ARCHIVE].startup(app[keys.DATABASE], app[keys.MEDIA])
    )
    app.on_shutdown.append(_hang_up)

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(settings.web_dir / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
    )
    # added to the environment by jinja2.ext.i18n, which its type information does not show
    env.install_gettext_callables(  # type: ignore[attr-defined]
        catalogs.gettext, catalogs.ngettext, newstyle=True
    )
    env.globals["village_time"] = pages.village_time  # every server-rendered time (issue 14)

    api.setup(app)
    health.setup(app)
    app.router.add_routes(media.routes)
    app.router.add_routes(replays.routes)
    app.router.add_routes(minutes.routes)
    members.setup(app)
    app.router.add_routes(pages.routes)
    # /static/ and /vendor/, versioned URLs, compressed (and ours minified)
    assets.setup(app, settings.web_dir, minify=settings.minify_assets)
    return app


def _live(app: web.Application, settings: Settings) -> None:
    """The socket.io server, and the live side that stores and broadcasts through it."""
    sio = socket_server(settings)
    app[keys.LIVE] = live = Live(
        SocketAudience(sio),
        database=lambda: app[keys.DATABASE],
        media=lambda: app[keys.MEDIA],
        secret_vote_minimum=settings.secret_vote_min_electorate,
        host_away_grace=settings.host_away_grace,
        attendance_leave_grace=settings.attendance_leave_grace,
    )
    app[keys.REALTIME] = Realtime(
        app, sio, live, app[keys.TOKENS], settings, catalogs=app[keys.CATALOGS]
    )


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    database = Database(settings.database_url, timeout=settings.db_timeout)
    await database.migrate()
    app[keys.DATABASE] = database
    logger.info("database: %s", database.engine.url.render_as_string(hide_password=True))
    yield
    await database.close()


async def _hang_up(app: web.Application) -> None:
    """On shutdown: sockets told to reconnect and dropped, recordings closed, peers hung up.

    Open sockets and peers would hold the exit (aiohttp waits for their handlers).
    """
    app[keys.REALTIME].closing = True
    dropped = await drop_for_restart(app[keys.REALTIME].sio)
    logger.info("stopping: %s socket.io clients told to reconnect", dropped)
    await _bounded(app[keys.ARCHIVE].close(), CLOSE_RECORDINGS_SECONDS, "closing the recordings")
    await app[keys.REALTIME].sio.shutdown()
    await app[keys.REALTIME].close()
    await app[keys.LIVE].close()
    await _bounded(app[keys.MEDIA].close(), HANG_UP_PEERS_SECONDS, "hanging up the peers")


async def _bounded(work: Awaitable[None], seconds: float, what: str) -> None:
    """A shutdown step that may hang (an aiortc close on a dead peer): at most ``seconds``."""
    try:
        await asyncio.wait_for(work, seconds)
    except TimeoutError:
        logger.warning("stopping: %s took over %s s; going on", what, seconds)


async def _media(app: web.Application) -> AsyncIterator[None]:
    hub = MediaHub(app[keys.SETTINGS].media_config())
    hub.add_listener(app[keys.LIVE].on_media_event)
    hub.add_listener(app[keys.ARCHIVE].on_room_event)  # records a publisher on the air
    app[keys.MEDIA] = hub
    yield
    await hub.close()
