"""Autogenerate a migration from the models against a scratch SQLite database.

.venv/bin/python -m server.store.migrations.revise "add villages"
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from server.store.db import Database, alembic_config


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'scratch.db'}")
        await database.migrate()
        async with database.engine.begin() as conn:

            def revise(sync_conn) -> None:
                config = alembic_config(sync_conn)
                number = len(list((Path(__file__).parent / "versions").glob("[0-9]*.py"))) + 1
                command.revision(config, message=message, autogenerate=True, rev_id=f"{number:04d}")

            await conn.run_sync(revise)
        await database.close()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "change"))
