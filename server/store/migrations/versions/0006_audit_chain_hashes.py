"""audit chain hashes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Existing events are chained here, in seq order per meeting, with the same recipe
as server/services/audit.py (copied, so this migration never changes).
"""

import hashlib
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _hash(prev, meeting_id, seq, type_, at, data):
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    body = {
        "meeting_id": meeting_id,
        "seq": seq,
        "type": type_,
        "at": at.isoformat(timespec="microseconds"),
        "data": data,
    }
    text = prev + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hash", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_hash", sa.String(length=64), nullable=False, server_default="")
        )

    events = sa.table(
        "events",
        sa.column("id", sa.Integer),
        sa.column("meeting_id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("type", sa.String),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("data", sa.JSON),
        sa.column("hash", sa.String),
    )
    meetings = sa.table("meetings", sa.column("id", sa.Integer), sa.column("last_hash", sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(events).order_by(events.c.meeting_id, events.c.seq)).fetchall()
    last: dict[int, str] = {}
    for row in rows:
        digest = _hash(
            last.get(row.meeting_id, ""), row.meeting_id, row.seq, row.type, row.at, row.data
        )
        bind.execute(events.update().where(events.c.id == row.id).values(hash=digest))
        last[row.meeting_id] = digest
    for meeting_id, digest in last.items():
        bind.execute(meetings.update().where(meetings.c.id == meeting_id).values(last_hash=digest))


def downgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_column("last_hash")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("hash")
