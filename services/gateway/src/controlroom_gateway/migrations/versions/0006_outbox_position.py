"""gateway: outbox rows numbered in staging order

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    # Once the column this added; the runtime's messaging branch owns the outbox now and
    # gives it the column itself (controlroom_runtime.messaging_migrations).
    pass


def downgrade() -> None:
    pass
