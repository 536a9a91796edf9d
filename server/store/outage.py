"""A database that cannot answer now: which failures those are, as the 503 the edges send.

The edges (server/http/errors.py, server/socket_acks.py) ask :func:`database_refusal`
about every exception no handler turned into a refusal: PostgreSQL refusing or
dropping connections, a stalled one (DB_TIMEOUT ran out), SQLite locked by another
writer for longer than its busy timeout, a database that refuses writes. Nothing
else catches them, so a write that failed was rolled back with its session and its
acknowledgement says so; the pool replaces dead connections by itself
(``pool_pre_ping``), so the next request after the database is back succeeds.

The drivers do not always wrap what they raise (asyncpg's connect raises the
socket's ``ConnectionRefusedError`` or ``TimeoutError`` as is): a plain OSError or
TimeoutError counts only when it was raised inside the database's driver or pool.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import exc as sa

from ..errors import Busy, Unavailable

logger = logging.getLogger(__name__)

#: seconds after which a client should try again
BUSY_RETRY_AFTER = 2
UNAVAILABLE_RETRY_AFTER = 5
#: at most one warning per this many seconds while the database fails (not one per request)
LOG_EVERY = 10.0

_DRIVERS = ("sqlalchemy.", "asyncpg", "aiosqlite", "sqlite3")
_LOCKED = ("database is locked", "database table is locked", "lock timeout")
_REFUSING_WRITES = (
    "readonly database",
    "read-only transaction",
    "database or disk is full",
    "no space left",
    "disk i/o error",
    "unable to open database",
)
#: asyncpg's errors that mean "no usable connection", by class name (and its bases); not
#: its InterfaceError as such: that is also a client-side bug (too many bind parameters)
_CONNECTION = (
    "PostgresConnectionError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "CannotConnectNowError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
    "InsufficientResourcesError",
    "ReadOnlySQLTransactionError",
    "DiskFullError",
)

_last_warning = 0.0
_refused_since_warning = 0


def database_refusal(error: BaseException) -> Busy | None:
    """The 503 for a database that is busy or not answering; ``None`` for anything else."""
    refusal = _classify(error)
    if refusal is not None:
        _note(refusal, error)
    return refusal


def _classify(error: BaseException) -> Busy | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _one(current)
        if found is not None:
            return found
        # the explicit cause only: a bug raised while handling a database error is a bug
        current = current.__cause__
    return None


def _one(error: BaseException) -> Busy | None:
    if isinstance(error, sa.TimeoutError):  # no pooled connection came free in DB_TIMEOUT
        return busy()
    if isinstance(error, sa.DBAPIError):
        text = str(error.orig or error).lower()
        if any(words in text for words in _LOCKED):
            return busy()
        sqlite = type(error.orig).__module__.startswith("sqlite3")
        if (
            error.connection_invalidated
            # PostgreSQL's OperationalError is about the server; SQLite's also names bugs
            # ("no such table"), so only its words for a disk or a file count
            or (isinstance(error, sa.OperationalError) and not sqlite)
            or any(words in text for words in _REFUSING_WRITES)
        ):
            return unavailable()
        return None  # its cause (asyncpg's own error) is looked at next
    if _is_connection_error(error):
        return unavailable()
    if isinstance(error, (OSError, TimeoutError)) and _raised_in_driver(error):
        return unavailable()
    return None


def busy() -> Busy:
    return Busy("the database is busy: try again in a moment", retry_after=BUSY_RETRY_AFTER)


def unavailable() -> Unavailable:
    return Unavailable(
        "the database is not answering: try again in a moment",
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


def _is_connection_error(error: BaseException | None) -> bool:
    if error is None or not type(error).__module__.startswith("asyncpg"):
        return False
    return any(kind.__name__ in _CONNECTION for kind in type(error).__mro__)


def _raised_in_driver(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DRIVERS):
            return True
        traceback = traceback.tb_next
    return False


def _note(refusal: Busy, error: BaseException) -> None:
    """A warning now and then while it lasts, with how many requests were refused."""
    global _last_warning, _refused_since_warning
    _refused_since_warning += 1
    now = time.monotonic()
    if now - _last_warning < LOG_EVERY:
        return
    logger.warning(
        "database %s: %s: %s (%d request(s) answered 503 since the last warning)",
        refusal.code,
        type(error).__name__,
        str(error).splitlines()[0][:200] if str(error) else "no message",
        _refused_since_warning,
    )
    _last_warning, _refused_since_warning = now, 0
