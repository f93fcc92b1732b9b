"""consumer_test: outbox rows numbered in staging order

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from controlroom_runtime.messaging_tables import add_outbox_position_v2, drop_outbox_position_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "consumer_test"


def upgrade() -> None:
    add_outbox_position_v2(SCHEMA)


def downgrade() -> None:
    drop_outbox_position_v2(SCHEMA)
