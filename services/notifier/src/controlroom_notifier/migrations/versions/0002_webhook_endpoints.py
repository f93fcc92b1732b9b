"""notifier: tenant webhook endpoints; a delivery may go to one

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "notifier"


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_endpoints_tenant_created", "endpoints", ["tenant_id", "created_at", "id"], schema=SCHEMA
    )
    op.add_column("deliveries", sa.Column("endpoint_id", sa.Uuid, nullable=True), schema=SCHEMA)
    op.drop_constraint("uq_deliveries_run_kind", "deliveries", schema=SCHEMA)
    op.create_unique_constraint(
        "uq_deliveries_run_kind_endpoint",
        "deliveries",
        ["run_id", "kind", "endpoint_id"],
        schema=SCHEMA,
        postgresql_nulls_not_distinct=True,
    )


def downgrade() -> None:
    op.execute("DELETE FROM notifier.deliveries WHERE endpoint_id IS NOT NULL")
    op.drop_constraint("uq_deliveries_run_kind_endpoint", "deliveries", schema=SCHEMA)
    op.create_unique_constraint(
        "uq_deliveries_run_kind", "deliveries", ["run_id", "kind"], schema=SCHEMA
    )
    op.drop_column("deliveries", "endpoint_id", schema=SCHEMA)
    op.drop_table("endpoints", schema=SCHEMA)
