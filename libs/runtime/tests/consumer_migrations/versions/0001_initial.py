"""consumer_test: applied (outbox and inbox come from the runtime's messaging branch)

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "consumer_test"


def upgrade() -> None:
    op.create_table(
        "applied",
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        schema=SCHEMA,
    )
