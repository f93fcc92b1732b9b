"""executor_docker: attempts, outbox, inbox

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

SCHEMA = "executor_docker"


def upgrade() -> None:
    # outbox and inbox: the runtime's messaging branch (controlroom_runtime.messaging_migrations)
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("executor_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_attempts_executor_status", "attempts", ["executor_id", "status"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("attempts", schema=SCHEMA)
