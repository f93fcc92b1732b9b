"""Admin management of the lineage graph: manual edges, listing, soft deletion."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from controlroom_contracts.events import LineageEdgeAdded, LineageEdgeRemoved
from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    Done,
    LineageEdgeAddResult,
    LineageEdgeList,
    LineageEdgeView,
    ListLineageEdges,
)
from controlroom_lineage import store
from controlroom_lineage.service import entity_name
from controlroom_runtime.rpc import RpcFailure
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def edge_view(row: sa.Row[Any]) -> LineageEdgeView:
    return LineageEdgeView(
        id=row.id,
        source=row.source_entity,
        target=row.target_entity,
        edge_type=row.edge_type,
        origin="manual" if row.run_id is None else "run",
        run_id=row.run_id,
        job_type=row.job_type,
        metadata={str(k): str(v) for k, v in row.metadata.items()},
        created_by=row.created_by,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )


class LineageAdmin:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime

    async def add(self, request: AddLineageEdge) -> LineageEdgeAddResult:
        source, target = entity_name(request.edge.source), entity_name(request.edge.target)
        if not source or not target:
            raise RpcFailure("invalid", "source and target must name an entity")
        if source == target:
            raise RpcFailure("invalid", "an edge cannot lead from an entity to itself")
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            row, created = await store.add_manual_edge(
                uow.session,
                tenant_id=request.tenant_id,
                source=source,
                target=target,
                edge_type=request.edge.edge_type,
                metadata=request.edge.metadata,
                created_by=request.created_by,
            )
            if created:
                await uow.emit(
                    LineageEdgeAdded(
                        tenant_id=request.tenant_id,
                        edge_id=row.id,
                        source_entity=source,
                        target_entity=target,
                        edge_type=row.edge_type,
                        added_by=request.created_by,
                    )
                )
        if created:
            log.info("manual lineage edge added", extra={"source": source, "target": target})
        return LineageEdgeAddResult(edge=edge_view(row), created=created)

    async def list(self, request: ListLineageEdges) -> LineageEdgeList:
        after = (request.after.created_at, request.after.id) if request.after else None
        async with self._runtime.sessions() as session:
            rows = await store.list_edges(
                session,
                request.tenant_id,
                entity=entity_name(request.entity) if request.entity else None,
                include_deleted=request.include_deleted,
                limit=request.limit + 1,
                after=after,
            )
        return LineageEdgeList(
            items=[edge_view(r) for r in rows[: request.limit]], more=len(rows) > request.limit
        )

    async def delete(self, request: DeleteLineageEdge) -> Done:
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            outcome = await store.soft_delete(uow.session, request.tenant_id, request.edge_id)
            if outcome is None:
                raise RpcFailure("not_found", f"no lineage edge {request.edge_id}")
            if outcome == "deleted":
                await uow.emit(
                    LineageEdgeRemoved(
                        tenant_id=request.tenant_id,
                        edge_id=request.edge_id,
                        removed_by=request.deleted_by,
                    )
                )
                log.info("lineage edge deleted", extra={"edge_id": str(request.edge_id)})
        return Done(id=request.edge_id)
