"""gateway: runs show the schedule and the tick that submitted them

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("runs", sa.Column("schedule_id", sa.Uuid, nullable=True), schema=SCHEMA)
    op.add_column(
        "runs", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
    )
    op.create_index(
        "ix_runs_tenant_schedule",
        "runs",
        ["tenant_id", "schedule_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_schedule", "runs", schema=SCHEMA)
    op.drop_column("runs", "scheduled_for", schema=SCHEMA)
    op.drop_column("runs", "schedule_id", schema=SCHEMA)
