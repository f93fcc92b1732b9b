"""executor_k8s: outbox, inbox

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from controlroom_runtime.messaging_tables import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "executor_k8s"


def upgrade() -> None:
    create_messaging_tables_v1(SCHEMA)


def downgrade() -> None:
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
