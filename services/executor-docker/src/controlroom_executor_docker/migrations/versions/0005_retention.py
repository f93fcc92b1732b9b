"""executor_docker: what retention looks finished attempts and old cancellations up by

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from controlroom_executor.migration_ops import add_retention_indexes_v1, drop_retention_indexes_v1

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "executor_docker"


def upgrade() -> None:
    add_retention_indexes_v1(SCHEMA)


def downgrade() -> None:
    drop_retention_indexes_v1(SCHEMA)
