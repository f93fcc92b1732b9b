"""notifier: each delivery's last attempt (latency, when) and redelivery; listed per tenant

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "notifier"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("latency_ms", sa.Integer, nullable=True), schema=SCHEMA)
    op.add_column(
        "deliveries",
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.add_column(
        "deliveries",
        sa.Column("redelivered_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_deliveries_tenant_created",
        "deliveries",
        ["tenant_id", "created_at", "id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_tenant_created", "deliveries", schema=SCHEMA)
    op.drop_column("deliveries", "redelivered_at", schema=SCHEMA)
    op.drop_column("deliveries", "last_attempt_at", schema=SCHEMA)
    op.drop_column("deliveries", "latency_ms", schema=SCHEMA)
