"""scheduler: outbox rows numbered in staging order

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    # Once the column this added; the runtime's messaging branch owns the outbox now and
    # gives it the column itself (controlroom_runtime.messaging_migrations).
    pass


def downgrade() -> None:
    pass
