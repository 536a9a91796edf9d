"""Finding the caller: a Bearer token, or the browser's session cookie."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..errors import Forbidden, Unauthorized
from ..services import identity
from ..services.tokens import Principal

COOKIE = "cunhui_session"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def token_of(request: web.Request) -> tuple[str | None, bool]:
    """Return ``(token, from_cookie)``; the Authorization header wins."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        return token.strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


async def principal_of(request: web.Request) -> Principal | None:
    """The caller, or None when no credentials came; bad credentials raise 401."""
    if keys.PRINCIPAL in request:
        return request[keys.PRINCIPAL]
    token, from_cookie = token_of(request)
    principal = None
    if token:
        if from_cookie and request.method not in _SAFE_METHODS:
            _check_same_origin(request)
        app = request.app
        async with app[keys.DATABASE].session() as db:
            try:
                principal = await identity.resolve(db, app[keys.TOKENS], token)
            except Unauthorized:
                if not from_cookie:
                    raise
                principal = None  # a stale cookie is the same as none
    request[keys.PRINCIPAL] = principal
    return principal


async def require_principal(request: web.Request) -> Principal:
    principal = await principal_of(request)
    if principal is None:
        raise Unauthorized("log in first (Authorization: Bearer <token>)")
    return principal


async def require_committee(request: web.Request) -> Principal:
    principal = await require_principal(request)
    if not principal.is_committee:
        raise Forbidden("only the village committee may do this")
    return principal


def _check_same_origin(request: web.Request) -> None:
    # A cookie rides along on cross-site requests; refuse state changes whose
    # Origin is another site (SameSite=Lax covers browsers that send no Origin).
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        host = origin.split("://", 1)[-1]
        if host != request.host:
            raise Forbidden("cross-site request refused")
    elif request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden("cross-site request refused")


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, token: str, kind: str = "u"
) -> None:
    """The browser's session: the cookie lives as long as its kind of token does."""
    max_age = request.app[keys.TOKENS].lifetime(kind)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
