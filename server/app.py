"""The application factory: ``create_app(settings)`` builds everything, globals-free."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from media import MediaHub

from . import keys
from .http import api, health, media, members, minutes, pages, recordings
from .http.errors import error_middleware
from .http.proxies import forwarded_middleware
from .i18n import Catalogs
from .realtime import Realtime
from .recording import Recordings
from .services import identity
from .services.tokens import TokenService
from .settings import Settings
from .store import Database

logger = logging.getLogger(__name__)

#: JSON bodies are small; SDP has its own tighter limit in http/media.py
MAX_BODY_BYTES = 256 * 1024

#: front-end packages from web/node_modules (installed by the setup script)
VENDOR_DIRS = {
    "socket.io-client": "socket.io-client/dist",
    "hls.js": "hls.js/dist",
}


def create_app(settings: Settings) -> web.Application:
    settings = settings.with_secret()
    middlewares = [error_middleware, pages.locale_middleware]
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
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_media)
    app[keys.REALTIME] = Realtime(app)
    app[keys.RECORDINGS] = Recordings(app)
    app.on_startup.append(lambda app: app[keys.REALTIME].check_redis())
    app.on_startup.append(lambda app: app[keys.RECORDINGS].startup())
    app.on_shutdown.append(_hang_up)

    catalogs = Catalogs(settings.web_dir / "translations")
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(settings.web_dir / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(catalogs.gettext, catalogs.ngettext, newstyle=True)

    api.setup(app)
    health.setup(app)
    app.router.add_routes(media.routes)
    app.router.add_routes(recordings.routes)
    app.router.add_routes(minutes.routes)
    members.setup(app)
    app.router.add_routes(pages.routes)
    app.router.add_static("/static/", settings.web_dir / "static", name="static")
    node_modules = settings.web_dir / "node_modules"
    for name, sub in VENDOR_DIRS.items():
        if (node_modules / sub).is_dir():
            app.router.add_static(f"/vendor/{name}/", node_modules / sub)
        else:
            logger.warning("front-end package %s is missing: run scripts/serve", name)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    database = Database(settings.database_url)
    await database.migrate()
    app[keys.DATABASE] = database
    logger.info("database: %s", database.engine.url.render_as_string(hide_password=True))
    yield
    await database.close()


async def _hang_up(app: web.Application) -> None:
    """On shutdown, close sockets and peers first: open ones would hold the exit for a minute."""
    await app[keys.RECORDINGS].close()
    await app[keys.REALTIME].sio.shutdown()
    await app[keys.REALTIME].close()
    await app[keys.MEDIA].close()


async def _media(app: web.Application) -> AsyncIterator[None]:
    hub = MediaHub(app[keys.SETTINGS].media_config())
    hub.add_listener(app[keys.REALTIME].on_media_event)
    app[keys.MEDIA] = hub
    yield
    await hub.close()
