"""notifier: callbacks, outcomes, deliveries, outbox, inbox

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

SCHEMA = "notifier"


def upgrade() -> None:
    # outbox and inbox: the runtime's messaging branch (controlroom_runtime.messaging_migrations)
    op.create_table(
        "callbacks",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("on_complete", sa.Text, nullable=True),
        sa.Column("on_fail", sa.Text, nullable=True),
        sa.Column("on_progress", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "outcomes",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("run_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("run_id", "kind", name="uq_deliveries_run_kind"),
        schema=SCHEMA,
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("deliveries", schema=SCHEMA)
    op.drop_table("outcomes", schema=SCHEMA)
    op.drop_table("callbacks", schema=SCHEMA)
