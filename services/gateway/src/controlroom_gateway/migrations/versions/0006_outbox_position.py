"""gateway: outbox rows numbered in staging order

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from controlroom_runtime.messaging_tables import add_outbox_position_v2, drop_outbox_position_v2

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    add_outbox_position_v2(SCHEMA)


def downgrade() -> None:
    drop_outbox_position_v2(SCHEMA)
