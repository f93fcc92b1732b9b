"""messaging: the inbox is pruned by age, so it is indexed by it

Revision ID: m0003
Revises: m0002
"""

from __future__ import annotations

from alembic import context, op

revision = "m0003"
down_revision = "m0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = context.config.attributes["schema"]
    op.create_index("ix_inbox_handled_at", "inbox", ["handled_at"], schema=schema)


def downgrade() -> None:
    schema = context.config.attributes["schema"]
    op.drop_index("ix_inbox_handled_at", "inbox", schema=schema)
