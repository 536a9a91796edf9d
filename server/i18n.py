"""Translations: Babel .po catalogs in web/translations, chosen per request.

Message ids are English; ``zh_CN`` is the default locale. Catalogs are read
from the .po files at start-up, so no compile step is needed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")
LOCALE_COOKIE = "lang"

_current = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)


class Catalogs:
    def __init__(self, translations_dir: Path) -> None:
        self._messages: dict[str, dict[str, str]] = {}
        for locale in LOCALES:
            path = translations_dir / locale / "LC_MESSAGES" / "messages.po"
            messages: dict[str, str] = {}
            if path.exists():
                with path.open("rb") as f:
                    for message in read_po(f, locale=locale):
                        if message.id and message.string and not message.fuzzy:
                            key = message.id if isinstance(message.id, str) else message.id[0]
                            value = (
                                message.string
                                if isinstance(message.string, str)
                                else message.string[0]
                            )
                            messages[key] = value
            self._messages[locale] = messages

    def gettext(self, message: str) -> str:
        return self._messages.get(_current.get(), {}).get(message, message)

    def gettext_for(self, locale: str) -> Callable[[str], str]:
        """``gettext`` into ``locale``, whatever the current locale: touches no contextvar.

        The edges translate error messages with it (an unknown locale: the English ids).
        """
        messages = self._messages.get(locale, {})
        return lambda message: messages.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)

    def has(self, locale: str, message: str) -> bool:
        return message in self._messages.get(locale, {})


def pick_locale(cookie: str | None, accept_language: str | None) -> str:
    """The user's switch wins; then the browser's Accept-Language; then zh_CN."""
    if cookie in LOCALES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower().replace("-", "_")
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


def error_locale(cookie: str | None, accept_language: str | None) -> str:
    """The language of error messages (HTTP bodies, socket.io acks).

    As :func:`pick_locale` for a caller that names a language (the ``lang`` cookie or
    Accept-Language); a caller that names none (a script, an outside API client, the
    tests) keeps English, the language of the message ids, not the pages' zh_CN.
    """
    if not cookie and not (accept_language or "").strip():
        return "en"
    return pick_locale(cookie, accept_language)


def set_locale(locale: str) -> contextvars.Token:
    return _current.set(locale)


def reset_locale(token: contextvars.Token) -> None:
    """Back to the locale before ``set_locale`` (the request is over)."""
    _current.reset(token)


def current_locale() -> str:
    return _current.get()
