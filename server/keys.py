"""Typed keys for everything the application shares (STYLE.md: no module globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from media import MediaHub

    from .archive import Archive
    from .i18n import Catalogs
    from .live import Live
    from .realtime import Realtime
    from .services.tokens import Principal, TokenService
    from .settings import Settings
    from .store import Database

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
MEDIA: web.AppKey[MediaHub] = web.AppKey("media")
#: the socket.io side (server/realtime.py); the rest of the app broadcasts through LIVE
REALTIME: web.AppKey[Realtime] = web.AppKey("realtime")
#: store-then-broadcast, the per-meeting locks, timers and presence (server/live.py)
LIVE: web.AppKey[Live] = web.AppKey("live")
#: recording, post-processing, retention (server/archive/)
ARCHIVE: web.AppKey[Archive] = web.AppKey("archive")

#: the translations (server/i18n.py): pages, and error messages in the caller's language
CATALOGS: web.AppKey[Catalogs] = web.AppKey("catalogs")

#: the caller of a request, once resolved (None: no credentials)
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
