"""executor_k8s: what retention looks finished attempts and old cancellations up by

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from controlroom_executor.migration_ops import add_retention_indexes_v1, drop_retention_indexes_v1

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "executor_k8s"


def upgrade() -> None:
    add_retention_indexes_v1(SCHEMA)


def downgrade() -> None:
    drop_retention_indexes_v1(SCHEMA)
