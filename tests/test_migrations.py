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
        assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(
            database
        )
        assert await schema_drift(database) == []
    finally:
        await database.close()


async def test_empty_postgresql_upgrades_to_the_models(pg_database):  # noqa: F811
    assert {"users", "meetings", "agenda_items", "events", "alembic_version"} <= await tables(
        pg_database
    )
    assert await schema_drift(pg_database) == []


async def test_accounts_made_before_villages_land_in_one_village(tmp_path):
    """Upgrading 0001 -> 0002 puts existing committee accounts and meetings in 本村."""
    from alembic import command
    from sqlalchemy import text

    from server.store.db import alembic_config

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0001"))
            await conn.execute(
                text(
                    "INSERT INTO users (username, password_hash, created_at) "
                    "VALUES ('clerk', 'x', CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO meetings (code, title, allow_guests, status, created_at, last_seq) "
                    "VALUES ('123456789', 't', 0, 'ended', CURRENT_TIMESTAMP, 0)"
                )
            )
        await database.migrate()
        async with database.engine.connect() as conn:
            village = (await conn.execute(text("SELECT id, name FROM villages"))).one()
            assert village.name == "本村"
            assert (await conn.execute(text("SELECT village_id FROM users"))).scalar() == village.id
            assert (
                await conn.execute(text("SELECT village_id FROM meetings"))
            ).scalar() == village.id
    finally:
        await database.close()


async def test_events_recorded_before_the_audit_chain_are_chained_on_upgrade(tmp_path):
    """Upgrading 0005 -> 0006 hashes the existing events, so old meetings verify too."""
    from alembic import command
    from sqlalchemy import text

    from server.services import meetings, timeline
    from server.store.db import alembic_config

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0005"))
            await conn.execute(
                text(
                    "INSERT INTO meetings (code, title, allow_guests, status, created_at, last_seq, "
                    "kind, place, emergency_reason, cancel_reason) "
                    "VALUES ('123456789', 't', 0, 'ended', CURRENT_TIMESTAMP, 2, 'general', '', '', '')"
                )
            )
            for seq, status in ((1, "live"), (2, "ended")):
                await conn.execute(
                    text(
                        "INSERT INTO events (meeting_id, seq, type, at, data) VALUES "
                        "(1, :seq, 'meeting:status', '2026-11-01 08:00:0' || :seq || '.000000', :data)"
                    ),
                    {"seq": seq, "data": '{"status": "%s"}' % status},
                )
        await database.migrate()
        async with database.session() as db:
            verdict = await timeline.verify_chain(db, await meetings.get_meeting(db, 1))
        assert verdict.ok and verdict.events == 2, verdict
    finally:
        await database.close()
