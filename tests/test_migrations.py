"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from server.store import Database
from server.store.db import alembic_config


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
        assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(
            database
        )
        assert await schema_drift(database) == []
    finally:
        await database.close()


async def test_empty_postgresql_upgrades_to_the_models(pg_database):
    assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(
        pg_database
    )
    assert await schema_drift(pg_database) == []


@contextlib.asynccontextmanager
async def upgraded_from(tmp_path, revision: str, *rows: tuple[str, dict]):
    """A SQLite database built up to ``revision``, given ``rows`` (SQL, parameters), upgraded."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
            for statement, parameters in rows:
                await conn.execute(text(statement), parameters)
        await database.migrate()
        yield database
    finally:
        await database.close()


async def test_accounts_made_before_villages_land_in_one_village(tmp_path):
    """Upgrading 0001 -> 0002 puts existing committee accounts and meetings in 本村."""
    async with upgraded_from(
        tmp_path,
        "0001",
        (
            "INSERT INTO users (username, password_hash, created_at) "
            "VALUES ('clerk', 'x', CURRENT_TIMESTAMP)",
            {},
        ),
        (
            "INSERT INTO meetings (code, title, allow_guests, status, created_at, last_seq) "
            "VALUES ('123456789', 't', 0, 'ended', CURRENT_TIMESTAMP, 0)",
            {},
        ),
    ) as database:
        async with database.engine.connect() as conn:
            village = (await conn.execute(text("SELECT id, name FROM villages"))).one()
            assert village.name == "本村"
            assert (await conn.execute(text("SELECT village_id FROM users"))).scalar() == village.id
            assert (
                await conn.execute(text("SELECT village_id FROM meetings"))
            ).scalar() == village.id


async def test_events_recorded_before_the_audit_chain_are_chained_on_upgrade(tmp_path):
    """Upgrading 0005 -> 0006 hashes the existing events, so old meetings verify too."""
    from server.services import meetings, timeline

    meeting = (
        "INSERT INTO meetings (code, title, allow_guests, status, created_at, last_seq, "
        "kind, place, emergency_reason, cancel_reason) VALUES "
        "('123456789', 't', 0, 'ended', CURRENT_TIMESTAMP, 2, 'general', '', '', '')"
    )
    event = (
        "INSERT INTO events (meeting_id, seq, type, at, data) VALUES (1, :seq, "
        "'meeting:status', '2026-11-01 08:00:0' || :seq || '.000000', :data)"
    )
    events = [
        (event, {"seq": seq, "data": f'{{"status": "{status}"}}'})
        for seq, status in ((1, "live"), (2, "ended"))
    ]
    async with upgraded_from(tmp_path, "0005", (meeting, {}), *events) as database:
        async with database.session() as db:
            verdict = await timeline.verify_chain(db, await meetings.get_meeting(db, 1))
        assert verdict.ok and verdict.events == 2, verdict
