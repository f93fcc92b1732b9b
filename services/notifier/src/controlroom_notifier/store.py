"""Notifier tables: callbacks per run, outcomes seen, and the delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="notifier")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("job_type", sa.Text, nullable=False),
    sa.Column("on_complete", sa.Text, nullable=True),
    sa.Column("on_fail", sa.Text, nullable=True),
    sa.Column("on_progress", sa.Text, nullable=True),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("run_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("run_id", "kind", name="uq_deliveries_run_kind"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
)


async def save_callbacks(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(callbacks).values(**values).on_conflict_do_nothing())


async def save_outcome(session: AsyncSession, **values: Any) -> None:
    # The first terminal outcome wins; a run ends once.
    await session.execute(insert(outcomes).values(**values).on_conflict_do_nothing())


async def pending_pair(session: AsyncSession, run_id: UUID) -> sa.Row[*tuple[Any, ...]] | None:
    """The run's callbacks and outcome, once both are known."""
    return (
        await session.execute(
            sa.select(
                callbacks.c.tenant_id,
                callbacks.c.job_type,
                callbacks.c.on_complete,
                callbacks.c.on_fail,
                outcomes.c.status,
                outcomes.c.payload,
            )
            .join(outcomes, outcomes.c.run_id == callbacks.c.run_id)
            .where(callbacks.c.run_id == run_id)
        )
    ).first()


async def add_delivery(
    session: AsyncSession,
    *,
    tenant_id: str,
    run_id: UUID,
    kind: str,
    url: str,
    payload: dict[str, Any],
) -> bool:
    result = await session.execute(
        insert(deliveries)
        .values(id=uuid4(), tenant_id=tenant_id, run_id=run_id, kind=kind, url=url, payload=payload)
        .on_conflict_do_nothing()
        .returning(deliveries.c.id)
    )
    return result.first() is not None


async def lease_due(session: AsyncSession, limit: int, lease: timedelta) -> list[sa.Row[Any]]:
    """Take up to ``limit`` due deliveries for ``lease``; another replica skips them meanwhile."""
    due = (
        sa.select(deliveries.c.id)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= sa.func.now(),
            sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < sa.func.now()),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id.in_(due))
        .values(lease_until=sa.func.now() + lease, attempts=deliveries.c.attempts + 1)
        .returning(deliveries)
    )
    return list(result.all())


async def mark(session: AsyncSession, delivery_id: UUID, **values: Any) -> None:
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(lease_until=None, **values)
    )
