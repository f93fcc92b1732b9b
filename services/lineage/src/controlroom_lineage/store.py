"""Lineage tables (append-only edges, soft delete) and graph queries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from controlroom_contracts.rpc import LineageNode
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
    sa.Column("source_entity", sa.Text, nullable=True),
    sa.Column("target_entity", sa.Text, nullable=True),
    sa.Column("submitted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("completed", sa.Boolean, nullable=False, server_default=sa.false()),
)

edges = sa.Table(
    "edges",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("source_entity", sa.Text, nullable=False),
    sa.Column("target_entity", sa.Text, nullable=False),
    sa.Column("run_id", sa.Uuid, nullable=True),  # null for an edge an admin added
    sa.Column("job_type", sa.Text, nullable=True),
    sa.Column("edge_type", sa.Text, nullable=False, server_default="data_flow"),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.UniqueConstraint(
        "run_id", "source_entity", "target_entity", name="uq_edges_run_source_target"
    ),
    sa.Index("ix_edges_tenant_source", "tenant_id", "source_entity"),
    sa.Index("ix_edges_tenant_target", "tenant_id", "target_entity"),
    sa.Index("ix_edges_tenant_created", "tenant_id", "created_at", "id"),
    sa.Index(
        "uq_edges_manual_live",
        "tenant_id",
        "source_entity",
        "target_entity",
        "edge_type",
        unique=True,
        postgresql_where=sa.text("run_id IS NULL AND deleted_at IS NULL"),
    ),
)


@cache
def _declare() -> ReturningInsert[bool, bool]:
    """Built once: this statement runs for every submission, and building it costs more CPU
    than executing it."""
    stmt = insert(declared_io)
    return stmt.on_conflict_do_update(
        index_elements=[declared_io.c.run_id],
        set_={
            "job_type": stmt.excluded.job_type,
            "source_entity": stmt.excluded.source_entity,
            "target_entity": stmt.excluded.target_entity,
            "submitted": True,
        },
    ).returning(declared_io.c.submitted, declared_io.c.completed)


async def note_declared(
    session: AsyncSession,
    *,
    run_id: UUID,
    tenant_id: str,
    job_type: str,
    source: str,
    target: str,
) -> sa.Row[bool, bool]:
    """Record a run's declared source and target; returns (submitted, completed) after."""
    params = {
        "run_id": run_id,
        "tenant_id": tenant_id,
        "job_type": job_type,
        "source_entity": source,
        "target_entity": target,
        "submitted": True,
    }
    return (await session.execute(_declare(), params)).one()


async def note_completed(session: AsyncSession, *, run_id: UUID, tenant_id: str) -> None:
    stmt = insert(declared_io).values(run_id=run_id, tenant_id=tenant_id, completed=True)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[declared_io.c.run_id], set_={"completed": True})
    )


async def ready_edge(
    session: AsyncSession, run_id: UUID
) -> sa.Row[str, str, str, str | None] | None:
    """The run's (tenant, source, target, job_type) once it both declared them and completed."""
    return (
        await session.execute(
            sa.select(
                declared_io.c.tenant_id,
                declared_io.c.source_entity,
                declared_io.c.target_entity,
                declared_io.c.job_type,
            ).where(
                declared_io.c.run_id == run_id,
                declared_io.c.submitted,
                declared_io.c.completed,
                declared_io.c.source_entity.is_not(None),
                declared_io.c.target_entity.is_not(None),
            )
        )
    ).first()


async def insert_edge(
    session: AsyncSession,
    *,
    tenant_id: str,
    source: str,
    target: str,
    run_id: UUID,
    job_type: str | None,
    raw: dict[str, str],
) -> UUID | None:
    row = await _insert_edge(
        session,
        tenant_id=tenant_id,
        source_entity=source,
        target_entity=target,
        run_id=run_id,
        job_type=job_type,
        metadata=raw,
    )
    return row.id if row else None


async def _insert_edge(session: AsyncSession, **values: Any) -> sa.Row[Any] | None:
    """The new edge; None when an equal one exists (same run and pair, or same live manual)."""
    result = await session.execute(
        insert(edges).values(id=uuid4(), **values).on_conflict_do_nothing().returning(edges)
    )
    row: sa.Row[Any] | None = result.first()
    return row


async def add_manual_edge(
    session: AsyncSession,
    *,
    tenant_id: str,
    source: str,
    target: str,
    edge_type: str,
    metadata: dict[str, str],
    created_by: str,
) -> tuple[sa.Row[Any], bool]:
    """The live manual edge source -> target of this type, and whether this call added it."""
    added = await _insert_edge(
        session,
        tenant_id=tenant_id,
        source_entity=source,
        target_entity=target,
        edge_type=edge_type,
        metadata=metadata,
        created_by=created_by,
    )
    if added is not None:
        return added, True
    existing = (
        await session.execute(
            sa.select(edges).where(
                edges.c.tenant_id == tenant_id,
                edges.c.source_entity == source,
                edges.c.target_entity == target,
                edges.c.edge_type == edge_type,
                edges.c.run_id.is_(None),
                edges.c.deleted_at.is_(None),
            )
        )
    ).one()
    return existing, False


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


async def soft_delete(session: AsyncSession, tenant_id: str, edge_id: UUID) -> str | None:
    """Mark the edge deleted: 'deleted' now, 'already' before, None when the tenant has none."""
    deleted = (
        await session.execute(
            sa.update(edges)
            .where(
                edges.c.id == edge_id, edges.c.tenant_id == tenant_id, edges.c.deleted_at.is_(None)
            )
            .values(deleted_at=sa.func.now())
            .returning(edges.c.id)
        )
    ).first()
    if deleted is not None:
        return "deleted"
    exists = await session.scalar(
        sa.select(edges.c.id).where(edges.c.id == edge_id, edges.c.tenant_id == tenant_id)
    )
    return "already" if exists is not None else None


_WALK = {
    # direction: (column we match on, column we walk to)
    "upstream": ("target_entity", "source_entity"),
    "downstream": ("source_entity", "target_entity"),
}


async def walk(
    session: AsyncSession, tenant_id: str, entity: str, direction: str, depth: int
) -> list[LineageNode]:
    """Entities reachable from ``entity`` within ``depth`` hops, nearest hop per (entity, run)."""
    match, reach = _WALK[direction]
    query = sa.text(
        f"""
        WITH RECURSIVE hop(entity, run_id, job_type, depth) AS (
            SELECT e.{reach}, e.run_id, e.job_type, 1
            FROM lineage.edges e
            WHERE e.tenant_id = :tenant AND e.{match} = :entity AND e.deleted_at IS NULL
          UNION
            SELECT e.{reach}, e.run_id, e.job_type, hop.depth + 1
            FROM lineage.edges e JOIN hop ON e.{match} = hop.entity
            WHERE e.tenant_id = :tenant AND e.deleted_at IS NULL AND hop.depth < :depth
        )
        SELECT entity, run_id, job_type, min(depth) AS depth
        FROM hop GROUP BY entity, run_id, job_type ORDER BY depth, entity
        """  # noqa: S608 - column names come from _WALK, never from input
    )
    rows = await session.execute(query, {"tenant": tenant_id, "entity": entity, "depth": depth})
    return [
        LineageNode(entity=r.entity, job_id=r.run_id, job_type=r.job_type, depth=r.depth)
        for r in rows
    ]
