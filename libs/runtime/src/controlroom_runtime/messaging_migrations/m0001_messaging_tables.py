"""messaging: outbox (numbered in staging order) and inbox, adopted where they exist

Revision ID: m0001
Revises:
"""

from __future__ import annotations

from alembic import context, op

revision = "m0001"
down_revision = None
branch_labels = ("messaging",)
depends_on = None


def upgrade() -> None:
    # Until this branch existed each service created these tables in its own migrations: a
    # schema migrated then has them already, in this very shape, and keeps its rows.
    schema = context.config.attributes["schema"]
    for statement in (
        f"""CREATE TABLE IF NOT EXISTS "{schema}".outbox (
            id uuid PRIMARY KEY,
            subject text NOT NULL,
            payload bytea NOT NULL,
            headers jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            position bigint GENERATED ALWAYS AS IDENTITY NOT NULL
        )""",
        f'CREATE INDEX IF NOT EXISTS ix_outbox_created_at ON "{schema}".outbox (created_at)',
        f'CREATE INDEX IF NOT EXISTS ix_outbox_position ON "{schema}".outbox (position)',
        f"""CREATE TABLE IF NOT EXISTS "{schema}".inbox (
            consumer text NOT NULL,
            event_id uuid NOT NULL,
            handled_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        )""",
    ):
        op.execute(statement)


def downgrade() -> None:
    schema = context.config.attributes["schema"]
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)
