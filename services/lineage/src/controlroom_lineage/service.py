"""Lineage use cases: an edge source -> target for every completed run that declared them."""

from __future__ import annotations

import logging
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.events import JobSubmitted, LineageRecorded, RunCompleted
from controlroom_contracts.rpc import LineageGraph, LineageGraphQuery
from controlroom_lineage import store
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def entity_name(uri: str) -> str:
    """``supabase://schema.table`` -> ``schema.table``: the graph speaks of entities, not URIs."""
    _, sep, rest = uri.partition("://")
    return rest if sep else uri


async def on_job_submitted(uow: UnitOfWork, event: JobSubmitted) -> None:
    inputs = event.job.spec.inputs
    source, target = inputs.get("source"), inputs.get("target")
    if not (source and target):
        return  # an edge needs both: a run that declares fewer leaves nothing to record
    _submitted, completed = await store.note_declared(
        uow.session,
        run_id=event.run_id,
        tenant_id=event.tenant_id,
        job_type=event.job.job_type,
        source=entity_name(source),
        target=entity_name(target),
    )
    if completed:  # the usual order is submitted, then completed: nothing to record yet
        await _record_if_ready(uow, event.run_id, inputs)


async def on_run_completed(uow: UnitOfWork, event: RunCompleted) -> None:
    await store.note_completed(uow.session, run_id=event.run_id, tenant_id=event.tenant_id)
    await _record_if_ready(uow, event.run_id, {})


async def _record_if_ready(uow: UnitOfWork, run_id: UUID, raw: dict[str, str]) -> None:
    """Events may arrive in either order; the edge is written when both are known."""
    ready = await store.ready_edge(uow.session, run_id)
    if ready is None:
        return
    tenant_id, source, target, job_type = ready
    edge_id = await store.insert_edge(
        uow.session,
        tenant_id=tenant_id,
        source=source,
        target=target,
        run_id=run_id,
        job_type=job_type,
        raw=raw,
    )
    if edge_id is None:
        return
    await uow.emit(
        LineageRecorded(
            tenant_id=tenant_id,
            run_id=run_id,
            edge_id=edge_id,
            source_entity=source,
            target_entity=target,
        )
    )
    log.info("lineage edge recorded", extra={"source": source, "target": target})


async def graph(session: AsyncSession, query: LineageGraphQuery) -> LineageGraph:
    entity = entity_name(query.entity)
    upstream = downstream = []
    if query.direction in ("upstream", "both"):
        upstream = await store.walk(session, query.tenant_id, entity, "upstream", query.depth)
    if query.direction in ("downstream", "both"):
        downstream = await store.walk(session, query.tenant_id, entity, "downstream", query.depth)
    return LineageGraph(entity=entity, upstream=upstream, downstream=downstream)
