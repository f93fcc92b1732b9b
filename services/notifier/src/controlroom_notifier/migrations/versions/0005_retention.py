"""notifier: when a run's end was heard; what retention looks old rows up by

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

SCHEMA = "notifier"


def upgrade() -> None:
    # Outcomes recorded before this migration are dated by it: kept a full retention from now.
    op.add_column(
        "outcomes",
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment="When the run's end was heard: retention ages the run's rows by it",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_outcomes_recorded", "outcomes", ["recorded_at"], schema=SCHEMA)
    op.create_index(
        "ix_deliveries_finished_created",
        "deliveries",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('delivered', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_finished_created", "deliveries", schema=SCHEMA)
    op.drop_index("ix_outcomes_recorded", "outcomes", schema=SCHEMA)
    op.drop_column("outcomes", "recorded_at", schema=SCHEMA)
