"""lineage: declared_io, edges, outbox, inbox

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "lineage"


def upgrade() -> None:
    # outbox and inbox: the runtime's messaging branch (controlroom_runtime.messaging_migrations)
    op.create_table(
        "declared_io",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job_type", sa.Text, nullable=True),
        sa.Column("source_entity", sa.Text, nullable=True),
        sa.Column("target_entity", sa.Text, nullable=True),
        sa.Column("submitted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("completed", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.create_table(
        "edges",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("source_entity", sa.Text, nullable=False),
        sa.Column("target_entity", sa.Text, nullable=False),
        sa.Column("run_id", sa.Uuid, nullable=False),
        sa.Column("job_type", sa.Text, nullable=True),
        sa.Column("edge_type", sa.Text, nullable=False, server_default="data_flow"),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "run_id", "source_entity", "target_entity", name="uq_edges_run_source_target"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_edges_tenant_source", "edges", ["tenant_id", "source_entity"], schema=SCHEMA
    )
    op.create_index(
        "ix_edges_tenant_target", "edges", ["tenant_id", "target_entity"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("edges", schema=SCHEMA)
    op.drop_table("declared_io", schema=SCHEMA)
