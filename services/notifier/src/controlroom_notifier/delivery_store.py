"""Queries over the delivery log: lease due deliveries fairly, record outcomes, list, redeliver."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_notifier.store import deliveries

d = deliveries.c


def _due() -> list[sa.ColumnElement[bool]]:
    return [
        d.status == "pending",
        d.next_attempt_at <= sa.func.now(),
        sa.or_(d.lease_until.is_(None), d.lease_until < sa.func.now()),
    ]


def _in_flight() -> sa.ColumnElement[bool]:
    # Never NULL (a NULL lease makes it false), so NOT of it is a plain condition too.
    return sa.and_(
        d.status == "pending", d.lease_until.is_not(None), d.lease_until >= sa.func.now()
    )


async def lease_due(
    session: AsyncSession,
    limit: int,
    lease: timedelta,
    *,
    per_tenant: int,
    in_flight: Mapping[str, int],
) -> list[sa.Row[Any]]:
    """Take up to ``limit`` due deliveries for ``lease`` (another replica skips them meanwhile),
    round-robin over tenants, oldest first within each, and never so many of one tenant that
    ``in_flight`` (this process's running deliveries per tenant) passes ``per_tenant``."""
    rank = sa.func.row_number().over(partition_by=d.tenant_id, order_by=(d.next_attempt_at, d.id))
    ranked = (
        sa.select(d.id, d.tenant_id, d.next_attempt_at, rank.label("rank"))
        .where(*_due())
        .subquery("ranked")
    )
    picked = sa.select(ranked.c.id)
    room: sa.ColumnElement[int] = sa.literal(per_tenant)
    if busy := [(tenant, n) for tenant, n in in_flight.items() if n > 0]:
        flying = (
            sa.values(sa.column("tenant_id", sa.Text), sa.column("n", sa.Integer), name="flying")
            .data(busy)
            .alias("flying")
        )
        picked = picked.select_from(
            ranked.outerjoin(flying, flying.c.tenant_id == ranked.c.tenant_id)
        )
        room = per_tenant - sa.func.coalesce(flying.c.n, 0)
    picked = (
        picked.where(ranked.c.rank <= room)
        .order_by(ranked.c.rank, ranked.c.next_attempt_at)
        .limit(limit)
    )
    # The due conditions again on the locked rows: a row another replica leased since this
    # statement's snapshot is re-read after the lock, and skipped.
    locked = (
        sa.select(d.id)
        .where(d.id.in_(picked.scalar_subquery()), *_due())
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        sa.update(deliveries)
        .where(d.id.in_(locked))
        .values(lease_until=sa.func.now() + lease, attempts=d.attempts + 1)
        .returning(deliveries)
    )
    return list(result.all())


async def mark(session: AsyncSession, delivery_id: UUID, **values: Any) -> None:
    await session.execute(
        sa.update(deliveries).where(d.id == delivery_id).values(lease_until=None, **values)
    )


async def list_deliveries(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None,
    run_id: UUID | None,
    limit: int,
    before: tuple[datetime, UUID] | None,
) -> list[sa.Row[Any]]:
    """The tenant's deliveries, newest first, after the keyset position ``before``."""
    query = sa.select(deliveries).where(d.tenant_id == tenant_id)
    if status is not None:
        query = query.where(d.status == status)
    if run_id is not None:
        query = query.where(d.run_id == run_id)
    if before is not None:
        query = query.where(sa.tuple_(d.created_at, d.id) < sa.tuple_(*before))
    query = query.order_by(d.created_at.desc(), d.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


# A redelivery starts the delivery over under the same id: due now, attempts from zero. A
# delivery being attempted right now is left alone (its attempt decides what it becomes).
_REDELIVERED = {
    "status": "pending",
    "attempts": 0,
    "next_attempt_at": sa.func.now(),
    "lease_until": None,
    "redelivered_at": sa.func.now(),
}


async def redeliver(session: AsyncSession, tenant_id: str, delivery_id: UUID) -> sa.Row[Any] | None:
    """Start the delivery over; the row as it is now (unchanged if in flight); None if the
    tenant has no such delivery."""
    changed: sa.Row[Any] | None = (
        await session.execute(
            sa.update(deliveries)
            .where(d.id == delivery_id, d.tenant_id == tenant_id, sa.not_(_in_flight()))
            .values(**_REDELIVERED)
            .returning(deliveries)
        )
    ).first()
    if changed is not None:
        return changed
    current: sa.Row[Any] | None = (
        await session.execute(
            sa.select(deliveries).where(d.id == delivery_id, d.tenant_id == tenant_id)
        )
    ).first()
    return current


async def redeliver_failed(session: AsyncSession, tenant_id: str, run_id: UUID | None) -> int:
    """Start every failed delivery of the tenant (of ``run_id``) over; how many."""
    query = sa.update(deliveries).where(d.tenant_id == tenant_id, d.status == "failed")
    if run_id is not None:
        query = query.where(d.run_id == run_id)
    result = await session.execute(query.values(**_REDELIVERED).returning(d.id))
    return len(result.all())
