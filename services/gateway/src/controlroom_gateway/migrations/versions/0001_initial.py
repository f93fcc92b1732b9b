"""gateway: runs read model, outbox, inbox

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    # outbox and inbox: the runtime's messaging branch (controlroom_runtime.messaging_migrations)
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("submitted_by", sa.Text, nullable=True),
        sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("executor_kind", sa.Text, nullable=True),
        sa.Column("sandboxed", sa.Boolean, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_runs_tenant_created", "runs", ["tenant_id", "created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("runs", schema=SCHEMA)
