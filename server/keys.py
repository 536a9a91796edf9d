"""Typed keys for everything the application shares (STYLE.md: no module globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from media import MediaHub

    from .realtime import Realtime
    from .recording import Recordings
    from .services.tokens import Principal, TokenService
    from .settings import Settings
    from .store import Database

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
MEDIA: web.AppKey[MediaHub] = web.AppKey("media")
REALTIME: web.AppKey[Realtime] = web.AppKey("realtime")
RECORDINGS: web.AppKey[Recordings] = web.AppKey("recordings")

#: the caller of a request, once resolved (None: no credentials)
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
