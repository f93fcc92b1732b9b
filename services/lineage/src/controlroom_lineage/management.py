"""Requests the gateway forwards: the graph, edges added, deleted and restored by admins with
their audit trail, OpenLineage events, and the dataset catalogue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import LineageEdgeAdded, LineageEdgeRemoved, LineageEdgeRestored
from controlroom_contracts.management import (
    AddLineageEdge,
    DatasetList,
    DatasetRun,
    DatasetView,
    DeleteLineageEdge,
    Done,
    GetDataset,
    GetLineageEdge,
    GetLineageEdgeAudit,
    LineageEdgeAddResult,
    LineageEdgeAudit,
    LineageEdgeChange,
    LineageEdgeList,
    LineageEdgeView,
    ListDatasets,
    ListLineageEdges,
    OpenLineageRecorded,
    RecordOpenLineage,
    RestoreLineageEdge,
)
from controlroom_contracts.rpc import LineageGraphQuery
from controlroom_lineage import graph, store
from controlroom_lineage.group_commit import GroupCommit
from controlroom_lineage.recording import Recorded, RunRecord, record_runs
from controlroom_runtime.rpc import RpcFailure
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def edge_view(row: sa.Row[Any]) -> LineageEdgeView:
    return LineageEdgeView(
        id=row.id,
        source=row.source_entity,
        target=row.target_entity,
        job=row.job_name,
        edge_type=row.edge_type,
        origin=row.origin,
        run_count=row.run_count,
        latest_run_id=row.latest_run_id,
        latest_run_at=row.latest_run_at,
        metadata={str(k): str(v) for k, v in row.metadata.items()},
        created_by=row.created_by,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
        delete_reason=row.delete_reason,
    )


def dataset_view(
    row: sa.Row[Any], upstream: int | None = None, downstream: int | None = None
) -> DatasetView:
    def run(role: str) -> DatasetRun | None:
        run_id = getattr(row, f"last_{role}_run_id")
        if run_id is None:
            return None
        return DatasetRun(
            run_id=run_id, job=getattr(row, f"last_{role}_job"), at=getattr(row, f"last_{role}_at")
        )

    return DatasetView(
        entity=row.entity,
        first_seen_at=row.first_seen_at,
        last_produced=run("produced"),
        last_consumed=run("consumed"),
        upstream_edges=upstream,
        downstream_edges=downstream,
    )


def _missing(
    request: GetLineageEdge | DeleteLineageEdge | RestoreLineageEdge | GetLineageEdgeAudit,
) -> RpcFailure:
    return RpcFailure("not_found", f"no lineage edge {request.edge_id}")


class LineageRequests:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        self._openlineage = GroupCommit(self._record)

    async def graph(self, query: LineageGraphQuery) -> bytes:
        """The JSON of a LineageGraph (see graph.lineage_graph)."""
        async with self._runtime.sessions() as session:
            return await graph.lineage_graph(session, query)

    async def add(self, request: AddLineageEdge) -> LineageEdgeAddResult:
        edge = request.edge
        if edge.source == edge.target:
            raise RpcFailure("invalid", "an edge cannot lead from an entity to itself")
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            row, created = await store.add_manual_edge(
                uow.session,
                tenant_id=request.tenant_id,
                source=edge.source,
                target=edge.target,
                job=edge.job,
                edge_type=edge.edge_type,
                metadata=edge.metadata,
                created_by=request.created_by,
                at=utc_now(),
            )
            if created:
                await uow.emit(
                    LineageEdgeAdded(
                        tenant_id=request.tenant_id,
                        edge_id=row.id,
                        source_entity=edge.source,
                        target_entity=edge.target,
                        edge_type=row.edge_type,
                        added_by=request.created_by,
                    )
                )
        if created:
            log.info("manual lineage edge added", extra={"edge_id": str(row.id)})
        return LineageEdgeAddResult(edge=edge_view(row), created=created)

    async def list_edges(self, request: ListLineageEdges) -> LineageEdgeList:
        after = (request.after.created_at, request.after.id) if request.after else None
        async with self._runtime.sessions() as session:
            rows = await store.list_edges(
                session,
                request.tenant_id,
                entity=request.entity,
                include_deleted=request.include_deleted,
                limit=request.limit + 1,
                after=after,
            )
        return LineageEdgeList(
            items=[edge_view(r) for r in rows[: request.limit]], more=len(rows) > request.limit
        )

    async def get(self, request: GetLineageEdge) -> LineageEdgeView:
        async with self._runtime.sessions() as session:
            row = await store.get_edge(session, request.tenant_id, request.edge_id)
        if row is None:
            raise _missing(request)
        return edge_view(row)

    async def delete(self, request: DeleteLineageEdge) -> Done:
        removed = LineageEdgeRemoved(
            tenant_id=request.tenant_id,
            edge_id=request.edge_id,
            removed_by=request.deleted_by,
            reason=request.reason,
        )
        await self._mark(request, removed, deleted=True, actor=request.deleted_by)
        return Done(id=request.edge_id)

    async def restore(self, request: RestoreLineageEdge) -> LineageEdgeView:
        restored = LineageEdgeRestored(
            tenant_id=request.tenant_id,
            edge_id=request.edge_id,
            restored_by=request.restored_by,
            reason=request.reason,
        )
        return await self._mark(request, restored, deleted=False, actor=request.restored_by)

    async def _mark(
        self,
        request: DeleteLineageEdge | RestoreLineageEdge,
        event: LineageEdgeRemoved | LineageEdgeRestored,
        *,
        deleted: bool,
        actor: str,
    ) -> LineageEdgeView:
        """Mark the edge deleted or live, audited, with ``event`` when it changed (idempotent:
        marking it as it already is changes nothing); the edge as it now is."""
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            outcome = await store.mark_deleted(
                uow.session,
                request.tenant_id,
                request.edge_id,
                deleted=deleted,
                actor=actor,
                reason=request.reason,
                at=utc_now(),
            )
            if outcome is None:
                raise _missing(request)
            if outcome == "changed":
                await uow.emit(event)
                log.info(
                    "lineage edge deleted" if deleted else "lineage edge restored",
                    extra={"edge_id": str(request.edge_id), "by": actor},
                )
            row = await store.get_edge(uow.session, request.tenant_id, request.edge_id)
        assert row is not None  # found above, and edges are never removed
        return edge_view(row)

    async def audit(self, request: GetLineageEdgeAudit) -> LineageEdgeAudit:
        async with self._runtime.sessions() as session:
            if await store.get_edge(session, request.tenant_id, request.edge_id) is None:
                raise _missing(request)
            rows = await store.edge_changes(session, request.edge_id)
        return LineageEdgeAudit(
            edge_id=request.edge_id,
            changes=[
                LineageEdgeChange(action=r.action, actor=r.actor, reason=r.reason, at=r.at)
                for r in rows
            ],
        )

    async def record_openlineage(self, request: RecordOpenLineage) -> OpenLineageRecorded:
        """A COMPLETE event records an edge from each input to each output; the others say
        nothing the graph keeps (their datasets may be partial until the run completes)."""
        if request.event_type != "COMPLETE" or not (request.inputs and request.outputs):
            return OpenLineageRecorded(edges=0, new_edges=0)
        recorded = await self._openlineage.submit(
            RunRecord(
                tenant_id=request.tenant_id,
                job=request.job,
                origin="openlineage",
                run_id=request.run_id,
                at=request.event_time,
                actor=f"{request.recorded_by} (openlineage: {request.producer})",
                sources=request.inputs,
                targets=request.outputs,
            )
        )
        return OpenLineageRecorded(edges=recorded.edges, new_edges=recorded.new_edges)

    async def _record(self, records: Sequence[RunRecord]) -> list[Recorded]:
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            return await record_runs(uow.session, records)

    async def datasets(self, request: ListDatasets) -> DatasetList:
        async with self._runtime.sessions() as session:
            rows = await store.list_datasets(
                session,
                request.tenant_id,
                prefix=request.prefix,
                after=request.after,
                limit=request.limit + 1,
            )
        return DatasetList(
            items=[dataset_view(r) for r in rows[: request.limit]], more=len(rows) > request.limit
        )

    async def dataset(self, request: GetDataset) -> DatasetView:
        async with self._runtime.sessions() as session:
            found = await store.get_dataset(session, request.tenant_id, request.entity)
        if found is None:
            raise RpcFailure("not_found", f"no dataset {request.entity}")
        row, upstream, downstream = found
        return dataset_view(row, upstream, downstream)
