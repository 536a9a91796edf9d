"""villages and members

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_VILLAGE = "本村"


def upgrade() -> None:
    op.create_table(
        "villages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("household", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pin", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("invite_version", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_id"],
            ["villages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("village_id", "pin"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_members_village_id"), ["village_id"], unique=False)

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("village_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_meetings_village_id"), ["village_id"], unique=False)
        batch_op.create_foreign_key("fk_meetings_village_id", "villages", ["village_id"], ["id"])

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("village_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_village_id"), ["village_id"], unique=False)
        batch_op.create_foreign_key("fk_users_village_id", "villages", ["village_id"], ["id"])

    # Accounts and meetings made before villages existed belong to one village.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM users")).scalar():
        bind.execute(
            sa.text("INSERT INTO villages (name, created_at) VALUES (:name, CURRENT_TIMESTAMP)"),
            {"name": DEFAULT_VILLAGE},
        )
        village_id = bind.execute(
            sa.text("SELECT id FROM villages WHERE name = :name"), {"name": DEFAULT_VILLAGE}
        ).scalar()
        bind.execute(sa.text("UPDATE users SET village_id = :v"), {"v": village_id})
        bind.execute(sa.text("UPDATE meetings SET village_id = :v"), {"v": village_id})


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("fk_users_village_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_users_village_id"))
        batch_op.drop_column("village_id")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint("fk_meetings_village_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_meetings_village_id"))
        batch_op.drop_column("village_id")

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_village_id"))

    op.drop_table("members")
    op.drop_table("villages")
