"""executor_docker: outbox rows numbered in staging order

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "executor_docker"


def upgrade() -> None:
    # Once the column this added; the runtime's messaging branch owns the outbox now and
    # gives it the column itself (controlroom_runtime.messaging_migrations).
    pass


def downgrade() -> None:
    pass
