"""executor_k8s: attempts and cancellations, as executor-docker keeps them

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from controlroom_executor.migration_ops import create_executor_tables_v1, drop_executor_tables_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "executor_k8s"


def upgrade() -> None:
    create_executor_tables_v1(SCHEMA)


def downgrade() -> None:
    drop_executor_tables_v1(SCHEMA)
