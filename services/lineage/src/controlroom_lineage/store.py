"""Lineage tables: edges identified by (tenant, source, target, job), their run references,
their audit trail, the dataset catalogue; and the writes that keep them.

Append-only: no statement here deletes, and a trigger refuses any that would (migration 0004).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="lineage")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

declared_io = sa.Table(
    "declared_io",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("job_type", sa.Text, nullable=True),
    sa.Column("job_name", sa.Text, nullable=True),
    sa.Column("sources", ARRAY(sa.Text), nullable=True),
    sa.Column("targets", ARRAY(sa.Text), nullable=True),
    sa.Column("submitted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("completed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("recorded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

edges = sa.Table(
    # ``id`` is lineage.edge_id(tenant_id, source_entity, target_entity, job_name): the
    # identity, hashed (migration 0004), so no second unique index on four names is needed.
    "edges",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("source_entity", sa.Text, nullable=False),
    sa.Column("target_entity", sa.Text, nullable=False),
    sa.Column("job_name", sa.Text, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("edge_type", sa.Text, nullable=False, server_default="data_flow"),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    sa.Column("run_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("latest_run_id", sa.Uuid, nullable=True),
    sa.Column("latest_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted_by", sa.Text, nullable=True),
    sa.Column("delete_reason", sa.Text, nullable=True),
    # A hop of the graph walk reads the edges of its frontier in this order, capped: the
    # index gives them in order, so a hub's thousands of edges are not sorted to keep a few.
    sa.Index("ix_edges_walk_down", "tenant_id", "source_entity", "target_entity", "job_name"),
    sa.Index("ix_edges_walk_up", "tenant_id", "target_entity", "source_entity", "job_name"),
    sa.Index("ix_edges_tenant_created", "tenant_id", "created_at", "id"),
)

edge_runs = sa.Table(
    "edge_runs",
    metadata,
    sa.Column("edge_id", sa.Uuid, primary_key=True),
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

edge_audit = sa.Table(
    "edge_audit",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("edge_id", sa.Uuid, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_edge_audit_edge", "edge_id", "id"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("entity", sa.Text(collation="C"), primary_key=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_produced_run_id", sa.Uuid, nullable=True),
    sa.Column("last_produced_job", sa.Text, nullable=True),
    sa.Column("last_produced_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_consumed_run_id", sa.Uuid, nullable=True),
    sa.Column("last_consumed_job", sa.Text, nullable=True),
    sa.Column("last_consumed_at", sa.DateTime(timezone=True), nullable=True),
)

openlineage_outbox = sa.Table(
    "openlineage_outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("run_id", sa.Uuid, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index(
        "ix_openlineage_outbox_pending",
        "next_attempt_at",
        "id",
        postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
    ),
    sa.Index("ix_openlineage_outbox_run", "run_id", "id"),
)


# -- manual edges and administration ---------------------------------------------------------


async def add_manual_edge(
    session: AsyncSession,
    *,
    tenant_id: str,
    source: str,
    target: str,
    job: str,
    edge_type: str,
    metadata: dict[str, str],
    created_by: str,
    at: datetime,
) -> tuple[sa.Row[Any], bool]:
    """The edge (tenant, source, target, job), and whether this call added it."""
    added = (
        await session.execute(
            insert(edges)
            .values(
                id=sa.func.lineage.edge_id(tenant_id, source, target, job),
                tenant_id=tenant_id,
                source_entity=source,
                target_entity=target,
                job_name=job,
                origin="manual",
                edge_type=edge_type,
                metadata=metadata,
                created_at=at,
                created_by=created_by,
            )
            .on_conflict_do_nothing(index_elements=[edges.c.id])
            .returning(edges)
        )
    ).first()
    if added is not None:
        await audit(session, added.id, tenant_id, "created", created_by, None, at)
        await _note_datasets(session, tenant_id, [source, target], at)
        return added, True
    existing = (
        await session.execute(
            sa.select(edges).where(
                edges.c.tenant_id == tenant_id,
                edges.c.source_entity == source,
                edges.c.target_entity == target,
                edges.c.job_name == job,
            )
        )
    ).one()
    return existing, False


async def _note_datasets(
    session: AsyncSession, tenant_id: str, names: list[str], at: datetime
) -> None:
    await session.execute(
        insert(datasets)
        .values([{"tenant_id": tenant_id, "entity": n, "first_seen_at": at} for n in names])
        .on_conflict_do_nothing()
    )


async def audit(
    session: AsyncSession,
    edge_id: UUID,
    tenant_id: str,
    action: str,
    actor: str,
    reason: str | None,
    at: datetime,
) -> None:
    await session.execute(
        sa.insert(edge_audit).values(
            edge_id=edge_id, tenant_id=tenant_id, action=action, actor=actor, reason=reason, at=at
        )
    )


async def get_edge(session: AsyncSession, tenant_id: str, edge_id: UUID) -> sa.Row[Any] | None:
    return (
        await session.execute(
            sa.select(edges).where(edges.c.id == edge_id, edges.c.tenant_id == tenant_id)
        )
    ).first()


async def list_edges(
    session: AsyncSession,
    tenant_id: str,
    *,
    entity: str | None,
    include_deleted: bool,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[sa.Row[Any]]:
    """The tenant's edges, oldest first, touching ``entity`` when given."""
    query = sa.select(edges).where(edges.c.tenant_id == tenant_id)
    if entity is not None:
        query = query.where(
            sa.or_(edges.c.source_entity == entity, edges.c.target_entity == entity)
        )
    if not include_deleted:
        query = query.where(edges.c.deleted_at.is_(None))
    if after is not None:
        query = query.where(sa.tuple_(edges.c.created_at, edges.c.id) > sa.tuple_(*after))
    query = query.order_by(edges.c.created_at, edges.c.id).limit(limit)
    return list((await session.execute(query)).all())


async def mark_deleted(
    session: AsyncSession,
    tenant_id: str,
    edge_id: UUID,
    *,
    deleted: bool,
    actor: str,
    reason: str | None,
    at: datetime,
) -> str | None:
    """Mark the edge deleted (or restore it): 'changed', 'unchanged' when it already was, or
    None when the tenant has no such edge. A change is audited in the same transaction."""
    changed = (
        await session.execute(
            sa.update(edges)
            .where(
                edges.c.id == edge_id,
                edges.c.tenant_id == tenant_id,
                edges.c.deleted_at.is_(None) if deleted else edges.c.deleted_at.is_not(None),
            )
            .values(
                deleted_at=at if deleted else None,
                deleted_by=actor if deleted else None,
                delete_reason=reason if deleted else None,
            )
            .returning(edges.c.id)
        )
    ).first()
    if changed is not None:
        action = "deleted" if deleted else "restored"
        await audit(session, edge_id, tenant_id, action, actor, reason, at)
        return "changed"
    return "unchanged" if await get_edge(session, tenant_id, edge_id) is not None else None


async def edge_changes(session: AsyncSession, edge_id: UUID) -> list[sa.Row[Any]]:
    return list(
        (
            await session.execute(
                sa.select(edge_audit)
                .where(edge_audit.c.edge_id == edge_id)
                .order_by(edge_audit.c.id)
            )
        ).all()
    )


# -- dataset catalogue -----------------------------------------------------------------------


async def list_datasets(
    session: AsyncSession, tenant_id: str, *, prefix: str | None, after: str | None, limit: int
) -> list[sa.Row[Any]]:
    """The tenant's datasets in name (byte) order, those starting with ``prefix`` if given."""
    query = sa.select(datasets).where(datasets.c.tenant_id == tenant_id)
    if prefix:
        # A prefix as a range of the primary key: LIKE would need the pattern escaped and
        # could not use the index under every collation.
        query = query.where(datasets.c.entity >= prefix, datasets.c.entity < prefix + "\U0010ffff")
    if after is not None:
        query = query.where(datasets.c.entity > after)
    return list((await session.execute(query.order_by(datasets.c.entity).limit(limit))).all())


async def get_dataset(
    session: AsyncSession, tenant_id: str, entity: str
) -> tuple[sa.Row[Any], int, int] | None:
    """The dataset with its live edges in and out."""
    row = (
        await session.execute(
            sa.select(datasets).where(
                datasets.c.tenant_id == tenant_id, datasets.c.entity == entity
            )
        )
    ).first()
    if row is None:
        return None
    live = sa.and_(edges.c.tenant_id == tenant_id, edges.c.deleted_at.is_(None))
    upstream = await session.scalar(
        sa.select(sa.func.count()).where(live, edges.c.target_entity == entity)
    )
    downstream = await session.scalar(
        sa.select(sa.func.count()).where(live, edges.c.source_entity == entity)
    )
    return row, int(upstream or 0), int(downstream or 0)
