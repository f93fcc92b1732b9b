"""lineage: manual edges (no run), who added them, one live manual edge per pair

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "lineage"


def upgrade() -> None:
    op.alter_column("edges", "run_id", nullable=True, schema=SCHEMA)
    op.add_column("edges", sa.Column("created_by", sa.Text, nullable=True), schema=SCHEMA)
    op.create_index(
        "uq_edges_manual_live",
        "edges",
        ["tenant_id", "source_entity", "target_entity", "edge_type"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("run_id IS NULL AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_edges_tenant_created", "edges", ["tenant_id", "created_at", "id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_edges_tenant_created", "edges", schema=SCHEMA)
    op.drop_index("uq_edges_manual_live", "edges", schema=SCHEMA)
    op.execute("DELETE FROM lineage.edges WHERE run_id IS NULL")
    op.drop_column("edges", "created_by", schema=SCHEMA)
    op.alter_column("edges", "run_id", nullable=False, schema=SCHEMA)
