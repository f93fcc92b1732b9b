"""The outbox and inbox tables every service keeps in its own schema (their migrations are the
runtime's messaging branch, ``controlroom_runtime.messaging_migrations``)."""

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
        # Set, with why, on a message that can never be published (larger than the broker
        # takes): it stays here for an operator, and the rows behind it go out.
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quarantine_reason", sa.Text, nullable=True),
        sa.Index("ix_outbox_created_at", "created_at"),
        sa.Index("ix_outbox_position", "position"),
        sa.Index(
            "ix_outbox_pending", "position", postgresql_where=sa.text("quarantined_at IS NULL")
        ),
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
        sa.Index("ix_inbox_handled_at", "handled_at"),
    )
