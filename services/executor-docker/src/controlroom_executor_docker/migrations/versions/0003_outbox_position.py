"""executor_docker: outbox rows numbered in staging order

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from controlroom_runtime.messaging_tables import add_outbox_position_v2, drop_outbox_position_v2

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "executor_docker"


def upgrade() -> None:
    add_outbox_position_v2(SCHEMA)


def downgrade() -> None:
    drop_outbox_position_v2(SCHEMA)
