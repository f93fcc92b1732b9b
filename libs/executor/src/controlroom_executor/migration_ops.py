"""Alembic operations for the executor tables, shared by both executors' migrations.

Versioned like ``controlroom_runtime.messaging_tables``: a migration calls the function of the
version it introduces, so an old migration keeps meaning what it meant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB


def create_executor_tables_v1(schema: str) -> None:
    """attempts (with the supervision columns) and cancellations, for a new executor schema."""
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("executor_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatch", JSONB, nullable=True),
        sa.Column("handle", sa.Text, nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        schema=schema,
    )
    op.create_index(
        "ix_attempts_executor_status", "attempts", ["executor_id", "status"], schema=schema
    )
    op.create_table(
        "cancellations",
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


def drop_executor_tables_v1(schema: str) -> None:
    op.drop_table("cancellations", schema=schema)
    op.drop_table("attempts", schema=schema)


def add_supervision_columns_v1(schema: str) -> None:
    """The dispatch an attempt was claimed from, its engine handle and when it started."""
    op.add_column("attempts", sa.Column("dispatch", JSONB, nullable=True), schema=schema)
    op.add_column("attempts", sa.Column("handle", sa.Text, nullable=True), schema=schema)
    op.add_column(
        "attempts",
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        schema=schema,
    )


def drop_supervision_columns_v1(schema: str) -> None:
    for column in ("launched_at", "handle", "dispatch"):
        op.drop_column("attempts", column, schema=schema)


def add_retention_indexes_v1(schema: str) -> None:
    """What retention looks finished attempts and old cancellations up by."""
    op.create_index(
        "ix_attempts_finished",
        "attempts",
        ["finished_at"],
        schema=schema,
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.create_index("ix_cancellations_requested", "cancellations", ["requested_at"], schema=schema)


def drop_retention_indexes_v1(schema: str) -> None:
    op.drop_index("ix_cancellations_requested", "cancellations", schema=schema)
    op.drop_index("ix_attempts_finished", "attempts", schema=schema)
