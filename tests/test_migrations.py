"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from server.store import Database

from .test_postgres import pg_database  # noqa: F401  (fixture)


async def schema_drift(database: Database) -> list:
    async with database.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )


async def tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_empty_sqlite_upgrades_to_the_models(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await database.migrate()
        await database.migrate()  # idempotent: a restart runs it again
        assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(database)
        assert await schema_drift(database) == []
    finally:
        await database.close()


async def test_empty_postgresql_upgrades_to_the_models(pg_database):  # noqa: F811
    assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(pg_database)
    assert await schema_drift(pg_database) == []
