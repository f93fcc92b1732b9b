"""scheduler: cancellations that overtook their run's submission

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_table(
        "pending_cancellations",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
        comment="Cancellations of runs not accepted yet: applied when their submission arrives",
    )


def downgrade() -> None:
    op.drop_table("pending_cancellations", schema=SCHEMA)
