"""executor_docker: attempts keep their dispatch, engine handle and launch time

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from controlroom_executor.migration_ops import (
    add_supervision_columns_v1,
    drop_supervision_columns_v1,
)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "executor_docker"


def upgrade() -> None:
    add_supervision_columns_v1(SCHEMA)


def downgrade() -> None:
    drop_supervision_columns_v1(SCHEMA)
