"""What the socket.io edge reads from a handshake, and the acks it answers with.

Pure helpers for server/realtime.py: a socket's client address and language (taken
once, at connect), and the ``{"ok": ...}`` acks, whose error message is written in
the language of the socket whose event is being handled (:func:`answering_in`).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import CookieError, SimpleCookie
from typing import NoReturn

import socketio

from .errors import CunhuiError
from .i18n import LOCALE_COOKIE, error_locale
from .store.outage import database_refusal

logger = logging.getLogger("server.realtime")

Gettext = Callable[[str], str]

#: the language of the socket whose event this task handles (set by ``answering_in``
#: in the event's own task, and reset after it): every refusal's message is written in it
_answer_in: contextvars.ContextVar[Gettext | None] = contextvars.ContextVar(
    "socket_gettext", default=None
)


def ok(**fields) -> dict:
    return {"ok": True, **fields}


def refusal(exc: CunhuiError) -> dict:
    """An error ack, its message in the sender's language (English outside an event)."""
    return {"ok": False, "error": exc.as_dict(_answer_in.get())}


def failure(exc: Exception) -> dict:
    """The error ack for a handler that raised ``exc``.

    A refusal (:class:`CunhuiError`) as it is; the database busy or not answering is a
    503-like ``busy``/``unavailable`` with ``retry_after`` (its session rolled back:
    nothing was written); anything else is a bug, logged with its traceback.
    """
    if isinstance(exc, CunhuiError):
        return refusal(exc)
    refused = database_refusal(exc)
    if refused is not None:
        return refusal(refused)
    logger.error("socket.io handler failed", exc_info=exc)
    return refusal(CunhuiError("server error"))


def connect_failure(exc: Exception, gettext: Gettext) -> NoReturn:
    """Raise what a socket's connect handler raises for ``exc`` (raised as it signs in).

    The database busy or down: socket.io's refusal with the error object (``code``,
    ``message`` in ``gettext``'s language, ``retry_after``), after which the page
    connects again (web/static/lib/realtime.js); anything else: ``exc`` itself.
    """
    refused = database_refusal(exc)
    if refused is None:
        raise exc
    raise socketio.exceptions.ConnectionRefusedError(
        refused.code, refused.as_dict(gettext)
    ) from exc


@contextmanager
def answering_in(gettext: Gettext | None) -> Iterator[None]:
    """Refusals made inside the block (this task's, and tasks it starts) use ``gettext``."""
    token = _answer_in.set(gettext)
    try:
        yield
    finally:
        _answer_in.reset(token)


def socket_locale(environ: dict, auth: object = None) -> str:
    """The language of a socket's error messages, from its handshake.

    The page's own language if the client sends it (``auth: {lang: "zh-CN"}``: a
    browser's WebSocket handshake need not carry Accept-Language); else as for HTTP
    (server/http/errors.py): the ``lang`` cookie, then Accept-Language; a client that
    names none of them (a script, the tests) gets English.
    """
    lang = auth.get("lang") if isinstance(auth, dict) else None
    if isinstance(lang, str) and lang[:2].lower() in ("zh", "en"):
        return "zh_CN" if lang[:2].lower() == "zh" else "en"
    try:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(LOCALE_COOKIE)
    except CookieError:
        morsel = None
    return error_locale(morsel.value if morsel else None, environ.get("HTTP_ACCEPT_LANGUAGE"))


def client_address(environ: dict) -> str:
    """The socket's client address, as the HTTP side sees it.

    engine.io's REMOTE_ADDR is a placeholder; its aiohttp request has passed the
    app's middlewares, so behind TRUSTED_PROXIES its ``remote`` is already the
    address from X-Forwarded-For (server/http/proxies.py), and the peer's otherwise.
    """
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    return remote or environ.get("REMOTE_ADDR") or "unknown"
