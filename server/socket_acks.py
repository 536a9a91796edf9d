"""What the socket.io edge reads from a handshake, and the acks it answers with.

Pure helpers for server/realtime.py: a socket's client address and language (taken
once, at connect), and the ``{"ok": ...}`` acks, whose error message is written in
the language of the socket whose event is being handled (:func:`answering_in`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import CookieError, SimpleCookie

from .errors import CunhuiError
from .i18n import LOCALE_COOKIE, error_locale

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
