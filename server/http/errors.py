"""Turn every failure into the contract's JSON error shape, in the caller's language.

``message`` is translated as pages are (the ``lang`` cookie, then Accept-Language);
a caller that names no language at all keeps English (server/i18n.py ``error_locale``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from .. import keys
from ..errors import BadRequest, CunhuiError, NotFound, Phrase, for_status
from ..i18n import LOCALE_COOKIE, error_locale
from ..services import payload
from ..services.payload import parse_id
from ..store.outage import database_refusal

logger = logging.getLogger(__name__)

_API_PREFIXES = ("/api/", "/whip/", "/whep/", "/healthz", "/readyz")


def json_error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    request: web.Request | None = None,
) -> web.Response:
    """An error body; with ``request``, ``message`` (an English id) in the caller's language."""
    if request is not None:
        message = gettext_of(request)(message)
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def gettext_of(request: web.Request) -> Callable[[str], str]:
    """The caller's language for error messages (English for a client that names none)."""
    locale = error_locale(
        request.cookies.get(LOCALE_COOKIE), request.headers.get("Accept-Language")
    )
    catalogs = request.app.get(keys.CATALOGS)
    return catalogs.gettext_for(locale) if catalogs is not None else str


def _is_row_id(name: str) -> bool:
    """Path parameters named ``id`` or ``..._id`` name a row (WHIP/WHEP sessions do not)."""
    return (name == "id" or name.endswith("_id")) and name != "session_id"


def check_request(request: web.Request) -> None:
    """The edge's check of what the URL carries, before any handler sees it.

    A path parameter with a NUL or a lone surrogate, or a row id that is not a
    decimal number an id column holds (1 to 2**31 - 1), names nothing: 404. A
    query parameter with a NUL or a lone surrogate: 400. (JSON bodies are checked
    by ``read_json``, socket.io payloads by the packet decoder: services/payload.py.)
    """
    for name, value in request.match_info.items():
        if payload.text_problem(value) or (_is_row_id(name) and parse_id(value) is None):
            if request.path.startswith(_API_PREFIXES):
                raise NotFound("no such {name}", params={"name": name})
            raise web.HTTPNotFound()
    for key, value in request.query.items():
        problem = payload.text_problem(key) or payload.text_problem(value)
        if problem:
            raise BadRequest(
                "the query parameter {key!r} {problem}",
                params={"key": key[:40], "problem": Phrase(problem)},
            )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        check_request(request)
        return await handler(request)
    except CunhuiError as exc:
        if exc.status >= 500 and exc.status != 503:  # 503: shedding load on purpose
            logger.error("%s %s failed: %s", request.method, request.path, exc.message)
        return _refuse(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(_API_PREFIXES):
            raise
        # aiohttp's own refusals (no route, wrong method, body too large): the tree's code
        kind = for_status(exc.status)
        code = kind.code if kind is not None else "http_error"
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return json_error(exc.status, code, message, headers=_cors(request), request=request)
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away mid-request: nothing to answer, nothing crashed
    except Exception as exc:
        # the database busy or not answering (refused, stalled, locked): 503 + Retry-After,
        # logged now and then by database_refusal; the session rolled back (nothing written)
        refused = database_refusal(exc)
        if refused is not None:
            if not request.path.startswith(_API_PREFIXES):
                return web.Response(
                    status=refused.status,
                    text=refused.translated(gettext_of(request)),
                    content_type="text/plain",
                    headers={"Retry-After": str(refused.retry_after)},
                )
            return _refuse(request, refused)
        # the traceback goes to the log, never to the client (pages included)
        logger.exception("%s %s crashed", request.method, request.path)
        if not request.path.startswith(_API_PREFIXES):
            return web.Response(
                status=500,
                text=gettext_of(request)("500: the server failed; this was logged."),
                content_type="text/plain",
            )
        return json_error(
            CunhuiError.status,
            CunhuiError.code,
            "the server failed; this was logged",
            request=request,
        )


def _refuse(request: web.Request, exc: CunhuiError) -> web.Response:
    # as_dict() is {code, message}, plus details some errors carry (an import's rows)
    headers = _cors(request) or {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)  # whole seconds (CunhuiError)
    return web.json_response(
        {"error": exc.as_dict(gettext_of(request))}, status=exc.status, headers=headers or None
    )


def _cors(request: web.Request) -> dict[str, str] | None:
    # WHIP/WHEP clients on other origins must be able to read error bodies.
    if request.path.startswith(("/whip/", "/whep/")):
        from .media import CORS_HEADERS

        return dict(CORS_HEADERS)
    return None
