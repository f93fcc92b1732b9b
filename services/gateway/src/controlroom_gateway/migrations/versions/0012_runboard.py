"""gateway: the tenant's run changes in order (the board's live feed), and each run's job

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
# Kept in step with store.RUN_CHANGE_EVENT_TYPES (a migration does not import the app).
RUN_CHANGES = (
    "event_type IN ('queued', 'dispatched', 'started', 'retry_scheduled', "
    "'completed', 'failed', 'cancelled')"
)


def upgrade() -> None:
    # run_events is the largest table and the projector appends to it all the time: built
    # without blocking those inserts (CONCURRENTLY cannot run inside a transaction).
    with op.get_context().autocommit_block():
        # A build interrupted half-way leaves an invalid index behind: built again.
        op.drop_index(
            "ix_run_events_tenant_changes",
            "run_events",
            schema=SCHEMA,
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.create_index(
            "ix_run_events_tenant_changes",
            "run_events",
            ["tenant_id", "id"],
            schema=SCHEMA,
            postgresql_where=sa.text(RUN_CHANGES),
            postgresql_concurrently=True,
        )
    op.create_table(
        "run_jobs",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job", JSONB, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("run_jobs", schema=SCHEMA)
    op.drop_index("ix_run_events_tenant_changes", "run_events", schema=SCHEMA)
