"""Notifier tables: callbacks per run, outcomes seen, tenant endpoints, and the delivery log.

The queries over the delivery log (leasing, outcomes, admin) are in ``delivery_store``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
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
    sa.Column(
        "recorded_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
        comment="When the run's end was heard: retention ages the run's rows by it",
    ),
    sa.Index("ix_outcomes_recorded", "recorded_at"),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
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
    sa.Index("ix_endpoints_tenant_created", "tenant_id", "created_at", "id"),
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
    sa.Column("endpoint_id", sa.Uuid, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("redelivered_at", sa.DateTime(timezone=True), nullable=True),
    # One delivery per run and callback kind, and per run and tenant endpoint.
    sa.UniqueConstraint(
        "run_id",
        "kind",
        "endpoint_id",
        name="uq_deliveries_run_kind_endpoint",
        postgresql_nulls_not_distinct=True,
    ),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_tenant_created", "tenant_id", "created_at", "id"),
    # Retention: finished deliveries by age (``retention``).
    sa.Index(
        "ix_deliveries_finished_created",
        "created_at",
        postgresql_where=sa.text("status IN ('delivered', 'failed')"),
    ),
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


async def add_endpoint_deliveries(
    session: AsyncSession,
    *,
    tenant_id: str,
    run_id: UUID,
    event_type: str,
    payload: dict[str, Any],
) -> int:
    """A delivery to each live endpoint of the tenant that wants ``event_type``; how many."""
    wanted = sa.select(
        sa.func.gen_random_uuid(),
        endpoints.c.tenant_id,
        sa.literal(run_id, sa.Uuid),
        sa.literal("endpoint"),
        endpoints.c.url,
        sa.literal(payload, JSONB),
        endpoints.c.id,
    ).where(
        endpoints.c.tenant_id == tenant_id,
        endpoints.c.deleted_at.is_(None),
        endpoints.c.event_types.any_() == event_type,
    )
    columns = ["id", "tenant_id", "run_id", "kind", "url", "payload", "endpoint_id"]
    result = await session.execute(
        insert(deliveries)
        .from_select(columns, wanted)
        .on_conflict_do_nothing()
        .returning(deliveries.c.id)
    )
    return len(result.all())


async def create_endpoint(session: AsyncSession, **values: Any) -> sa.Row[Any]:
    result = await session.execute(insert(endpoints).values(**values).returning(endpoints))
    row: sa.Row[Any] = result.one()
    return row


async def list_endpoints(
    session: AsyncSession, tenant_id: str, *, limit: int, after: tuple[datetime, UUID] | None
) -> list[sa.Row[Any]]:
    query = sa.select(endpoints).where(
        endpoints.c.tenant_id == tenant_id, endpoints.c.deleted_at.is_(None)
    )
    if after is not None:
        query = query.where(sa.tuple_(endpoints.c.created_at, endpoints.c.id) > sa.tuple_(*after))
    query = query.order_by(endpoints.c.created_at, endpoints.c.id).limit(limit)
    return list((await session.execute(query)).all())


async def get_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: UUID) -> Any:
    return (
        await session.execute(
            sa.select(endpoints).where(
                endpoints.c.id == endpoint_id,
                endpoints.c.tenant_id == tenant_id,
                endpoints.c.deleted_at.is_(None),
            )
        )
    ).first()


async def delete_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: UUID) -> bool:
    """Mark the endpoint deleted (its delivery log keeps pointing at it); False if none."""
    result = await session.execute(
        sa.update(endpoints)
        .where(
            endpoints.c.id == endpoint_id,
            endpoints.c.tenant_id == tenant_id,
            endpoints.c.deleted_at.is_(None),
        )
        .values(deleted_at=sa.func.now())
        .returning(endpoints.c.id)
    )
    return result.first() is not None


async def endpoint_secrets(session: AsyncSession, ids: Iterable[UUID]) -> dict[UUID, str]:
    """The signing secret of each live endpoint among ``ids`` (deleted ones are absent)."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(endpoints.c.id, endpoints.c.secret).where(
            endpoints.c.id.in_(wanted), endpoints.c.deleted_at.is_(None)
        )
    )
    return {row.id: row.secret for row in rows}
