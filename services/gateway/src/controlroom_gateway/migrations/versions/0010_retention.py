"""gateway: runs expire past their retention; what retention's passes look rows up by

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column(
            "expired_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Past its retention: the API no longer shows it; deleted after a grace",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_runs_unexpired_completed",
        "runs",
        ["completed_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("expired_at IS NULL"),
    )
    op.create_index(
        "ix_runs_expired",
        "runs",
        ["expired_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("expired_at IS NOT NULL"),
    )
    op.create_index(
        "ix_idempotency_keys_created", "idempotency_keys", ["created_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys", schema=SCHEMA)
    op.drop_index("ix_runs_expired", "runs", schema=SCHEMA)
    op.drop_index("ix_runs_unexpired_completed", "runs", schema=SCHEMA)
    op.drop_column("runs", "expired_at", schema=SCHEMA)
