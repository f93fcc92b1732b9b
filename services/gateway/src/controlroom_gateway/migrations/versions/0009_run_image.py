"""gateway: runs show the image their latest attempt ran in

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column("image", sa.Text, nullable=True, comment="The image its latest attempt ran in"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("runs", "image", schema=SCHEMA)
