"""The outbox and inbox tables every service keeps in its own schema."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Events committed with a state change and not yet confirmed published to JetStream."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # The order rows were staged in: a transaction's rows share created_at (now()), and
        # the relay must re-publish them in the order they were emitted.
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Index("ix_outbox_created_at", "created_at"),
        sa.Index("ix_outbox_position", "position"),
    )


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    """Event ids a consumer has applied, written in the same transaction as the effect."""
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column(
            "handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def create_messaging_tables_v1(schema: str) -> None:
    """Migration step (frozen: later changes get a v2): create outbox and inbox in ``schema``."""
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"], schema=schema)
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column(
            "handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


def add_outbox_position_v2(schema: str) -> None:
    """Migration step (frozen): number outbox rows in the order they are staged, so the relay
    re-publishes a transaction's messages in order (existing rows are numbered as they are)."""
    from alembic import op

    op.add_column(
        "outbox",
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False),
        schema=schema,
    )
    op.create_index("ix_outbox_position", "outbox", ["position"], schema=schema)


def drop_outbox_position_v2(schema: str) -> None:
    from alembic import op

    op.drop_index("ix_outbox_position", "outbox", schema=schema)
    op.drop_column("outbox", "position", schema=schema)
