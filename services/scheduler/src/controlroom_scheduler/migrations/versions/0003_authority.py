"""scheduler: the run state machine's columns (lane, priority, policy, deadline, ...) and attempts

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"
TS = sa.DateTime(timezone=True)

NEW_COLUMNS = [
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lane", sa.Text, nullable=False, server_default="A"),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="3"),
    sa.Column("session_id", sa.Uuid, nullable=True),
    sa.Column("job", sa.Text, nullable=True, comment="The JobRequest as JSON, for dispatch"),
    sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="600"),
    sa.Column("retry", JSONB, nullable=False, server_default="{}"),
    sa.Column("eligible_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("next_attempt_at", TS, nullable=True),
    sa.Column("dispatched_at", TS, nullable=True),
    sa.Column("started_at", TS, nullable=True),
    sa.Column("executor_id", sa.Text, nullable=True),
    sa.Column("deadline", TS, nullable=True),
    sa.Column("cancel_requested_at", TS, nullable=True),
    sa.Column(
        "traceparent", sa.Text, nullable=True, comment="The submission's trace: every decision"
    ),
]


def upgrade() -> None:
    for column in NEW_COLUMNS:
        op.add_column("runs", column, schema=SCHEMA)
    # Runs dispatched before the scheduler kept deadlines get one now, so none stays active
    # forever; their job was never kept, so they cannot be dispatched again.
    op.execute(
        f"UPDATE {SCHEMA}.runs SET deadline = now() + interval '10 minutes' "
        "WHERE status IN ('dispatched', 'running')"
    )
    op.create_index(
        "ix_runs_queued",
        "runs",
        ["tenant_id", "lane", "eligible_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_runs_active",
        "runs",
        ["status"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('dispatched', 'running')"),
    )
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("executor_kind", sa.Text, nullable=False),
        sa.Column("executor_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("dispatched_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("attempts", schema=SCHEMA)
    op.drop_index("ix_runs_active", "runs", schema=SCHEMA)
    op.drop_index("ix_runs_queued", "runs", schema=SCHEMA)
    for column in reversed(NEW_COLUMNS):
        op.drop_column("runs", column.name, schema=SCHEMA)
