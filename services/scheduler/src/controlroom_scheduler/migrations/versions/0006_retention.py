"""scheduler: what retention looks ended runs and stale cancellations up by

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_index(
        "ix_runs_ended",
        "runs",
        ["updated_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('completed', 'failed', 'cancelled')"),
    )
    op.create_index(
        "ix_pending_cancellations_requested",
        "pending_cancellations",
        ["requested_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_pending_cancellations_requested", "pending_cancellations", schema=SCHEMA)
    op.drop_index("ix_runs_ended", "runs", schema=SCHEMA)
