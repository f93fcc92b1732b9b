"""scheduler: schedules (a template's job submitted on a cron expression or an interval)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("schedule_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=True, comment="null: the latest at each tick"),
        sa.Column("cron", sa.Text, nullable=True),
        sa.Column("interval_seconds", sa.Integer, nullable=True),
        sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_fire_at", TS, nullable=False, comment="The earliest tick not yet fired"),
        sa.Column("last_fired_at", TS, nullable=True),
        sa.Column("last_run_id", sa.Uuid, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "(cron IS NULL) <> (interval_seconds IS NULL)", name="ck_schedules_one_clock"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_schedules_tenant_created", "schedules", ["tenant_id", "created_at"], schema=SCHEMA
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT paused"),
    )


def downgrade() -> None:
    op.drop_table("schedules", schema=SCHEMA)
