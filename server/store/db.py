"""The async database handle: SQLite by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from . import models  # noqa: F401  (registers the tables)

logger = logging.getLogger(__name__)

#: a SQLite database whose file system has less than this free counts as full: a
#: small write may still land in the WAL's old pages, the next large one will not
SQLITE_MIN_FREE_BYTES = 256 * 1024


class NotWritable(Exception):
    """The database refuses writes; ``state`` names why ("full", "read-only", ...)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


#: DB_TIMEOUT's default: seconds a request waits for the database (see ``Database``)
DEFAULT_TIMEOUT = 5.0


class Database:
    """Owns the engine; ``session()`` opens a unit of work.

    ``timeout`` (DB_TIMEOUT) bounds every wait on the database, so a stalled or
    refusing one answers 503 (server/store/outage.py) instead of holding requests:
    a connection from the pool, connecting (PostgreSQL), each statement
    (PostgreSQL's command timeout: a server that stopped answering), and SQLite's
    busy timeout (another writer holding the lock). ``None``: no statement timeout
    (the command line's long checks), still a bounded connect.
    """

    def __init__(self, url: str, timeout: float | None = None) -> None:
        self.url = url
        self.timeout = timeout
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        wait = timeout if timeout is not None else DEFAULT_TIMEOUT * 6
        in_memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        options: dict = {} if in_memory else {"pool_timeout": wait}
        if not self.is_sqlite:
            # a dead connection in the pool (the server restarted, a reset) is replaced at
            # checkout; connecting and each command are bounded (asyncpg's own timeouts)
            options["pool_pre_ping"] = True
            options["connect_args"] = {"timeout": wait, "command_timeout": timeout}
        self.engine = create_async_engine(url, **options)
        if self.is_sqlite:
            busy_ms = int(wait * 1000)
            event.listen(
                self.engine.sync_engine,
                "connect",
                lambda connection, _record: _sqlite_pragmas(connection, busy_ms),
            )
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    def session(self) -> AsyncSession:
        return self._sessions()

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; runs at start-up).

        On PostgreSQL without the command timeout: a migration may take long.
        """
        engine = self.engine
        if not self.is_sqlite and self.timeout is not None:
            engine = create_async_engine(
                self.url, poolclass=NullPool, connect_args={"timeout": self.timeout}
            )
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        finally:
            if engine is not self.engine:
                await engine.dispose()

    async def ping(self) -> bool:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def probe_writable(self) -> None:
        """Raise :class:`NotWritable` unless the database takes a committed write.

        The write rewrites ``alembic_version``'s single row with itself (every
        migrated database has it, on SQLite and PostgreSQL alike): a read-only
        database, a full disk or a database that has lost its files refuses it.
        SQLite may still fit one small write in pages it holds, so its file
        system's free space is checked too.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                stat = os.statvfs(Path(database).parent)
                if stat.f_bavail * stat.f_frsize < SQLITE_MIN_FREE_BYTES:
                    raise NotWritable(
                        "full",
                        f"{stat.f_bavail * stat.f_frsize // 1024} KiB free on the database's disk",
                    )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        except DBAPIError as exc:
            message = str(exc.orig or exc).splitlines()[0][:300]
            raise NotWritable(_write_refusal(message), message) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def _write_refusal(message: str) -> str:
    """A short name for why a write was refused (SQLite's and PostgreSQL's words)."""
    lower = message.lower()
    if "full" in lower or "no space left" in lower or "disk quota" in lower:
        return "full"
    if "read-only" in lower or "readonly" in lower:
        return "read-only"
    if "locked" in lower or "lock timeout" in lower:
        return "locked"
    return "error"


MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(sync_connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_connection
    return config


def _upgrade(sync_connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(sync_connection), "head")


def _sqlite_pragmas(dbapi_connection, busy_ms: int) -> None:
    # WAL keeps readers going while a write commits; a crash loses no committed row.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # another writer (a second process, `sqlite3` at a console) holding the lock longer
    # than this: "database is locked", answered 503 busy (server/store/outage.py)
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.close()
