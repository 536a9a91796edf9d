"""Turn every failure into the contract's JSON error shape."""

from __future__ import annotations

import logging

from aiohttp import web

from ..errors import CunhuiError

logger = logging.getLogger(__name__)

_API_PREFIXES = ("/api/", "/whip/", "/whep/", "/healthz")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


def json_error(status: int, code: str, message: str, headers=None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CunhuiError as exc:
        if exc.status >= 500:
            logger.error("%s %s failed: %s", request.method, request.path, exc.message)
        # as_dict() is {code, message}, plus details some errors carry (an import's rows)
        return web.json_response({"error": exc.as_dict()}, status=exc.status,
                                 headers=_cors(request))
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(_API_PREFIXES):
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return json_error(exc.status, code, message, headers=_cors(request))
    except Exception:
        logger.exception("%s %s crashed", request.method, request.path)
        if not request.path.startswith(_API_PREFIXES):
            raise
        return json_error(500, "internal_error", "the server failed; this was logged")


def _cors(request: web.Request) -> dict[str, str] | None:
    # WHIP/WHEP clients on other origins must be able to read error bodies.
    if request.path.startswith(("/whip/", "/whep/")):
        from .media import CORS_HEADERS

        return dict(CORS_HEADERS)
    return None
