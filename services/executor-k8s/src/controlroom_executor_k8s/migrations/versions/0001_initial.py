"""executor_k8s: outbox, inbox

Revision ID: 0001
Revises:
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "executor_k8s"


def upgrade() -> None:
    # Once outbox and inbox; the runtime's messaging branch owns them now
    # (controlroom_runtime.messaging_migrations).
    pass


def downgrade() -> None:
    pass
