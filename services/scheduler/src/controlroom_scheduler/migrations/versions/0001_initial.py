"""scheduler: runs, outbox, inbox

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    # outbox and inbox: the runtime's messaging branch (controlroom_runtime.messaging_migrations)
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("executor_kind", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ignored_events", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_runs_tenant_status", "runs", ["tenant_id", "status"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("runs", schema=SCHEMA)
