"""messaging: outbox rows that can never be published are quarantined with their reason

Revision ID: m0002
Revises: m0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "m0002"
down_revision = "m0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = context.config.attributes["schema"]
    op.add_column("outbox", sa.Column("quarantined_at", sa.DateTime(timezone=True)), schema=schema)
    op.add_column("outbox", sa.Column("quarantine_reason", sa.Text), schema=schema)
    # The relay reads only what is still to be published, in order.
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["position"],
        schema=schema,
        postgresql_where=sa.text("quarantined_at IS NULL"),
    )


def downgrade() -> None:
    schema = context.config.attributes["schema"]
    op.drop_index("ix_outbox_pending", "outbox", schema=schema)
    op.drop_column("outbox", "quarantine_reason", schema=schema)
    op.drop_column("outbox", "quarantined_at", schema=schema)
