"""Alembic environment: runs on the connection that server.store.db hands over.

Migrations run at start-up (``Database.migrate``), on SQLite and PostgreSQL alike.
To write a new one: ``.venv/bin/python -m server.store.migrations.revise "message"``.
"""

from alembic import context
from sqlmodel import SQLModel

from server.store import models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
