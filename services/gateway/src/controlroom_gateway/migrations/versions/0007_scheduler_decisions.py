"""gateway: runs show the scheduler's decisions (lane, priority, policy, attempts); sessions

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
TS = sa.DateTime(timezone=True)

NEW_COLUMNS = [
    sa.Column("lane", sa.Text, nullable=True),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="3"),
    sa.Column("session_id", sa.Uuid, nullable=True),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("timeout_seconds", sa.Integer, nullable=True),
    sa.Column("next_attempt_at", TS, nullable=True),
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts", JSONB, nullable=False, server_default="[]"),
]


def upgrade() -> None:
    for column in NEW_COLUMNS:
        op.add_column("runs", column, schema=SCHEMA)
    op.create_index(
        "ix_runs_tenant_session",
        "runs",
        ["tenant_id", "session_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("session_id IS NOT NULL"),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Index("ix_sessions_tenant_created", "tenant_id", "created_at"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("sessions", schema=SCHEMA)
    op.drop_index("ix_runs_tenant_session", "runs", schema=SCHEMA)
    for column in reversed(NEW_COLUMNS):
        op.drop_column("runs", column.name, schema=SCHEMA)
