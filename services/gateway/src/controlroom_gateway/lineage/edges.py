"""Lineage edges managed by hand (admins add, delete and restore them, each change audited),
and listed; the lineage service answers."""

from __future__ import annotations

from uuid import UUID

from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    Done,
    GetLineageEdge,
    GetLineageEdgeAudit,
    LineageEdgeAddResult,
    LineageEdgeAudit,
    LineageEdgeIn,
    LineageEdgeList,
    LineageEdgePage,
    LineageEdgeView,
    ListLineageEdges,
    RestoreLineageEdge,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.lineage.graph import SERVICE, entity_param
from controlroom_gateway.pagination import keyset_after, keyset_next


async def add_edge(
    gateway: Gateway, principal: Principal, body: LineageEdgeIn
) -> LineageEdgeAddResult:
    """Add the edge; the same edge again is answered with ``created`` false."""
    request = AddLineageEdge(tenant_id=principal.tenant_id, edge=body, created_by=principal.subject)
    return await gateway.ask(request, LineageEdgeAddResult, service=SERVICE)


async def list_edges(
    gateway: Gateway,
    principal: Principal,
    *,
    entity: str | None,
    include_deleted: bool,
    limit: int,
    cursor: str | None,
) -> LineageEdgePage:
    """The tenant's edges, oldest first, optionally those touching ``entity``."""
    request = ListLineageEdges(
        tenant_id=principal.tenant_id,
        entity=None if entity is None else entity_param(entity, "query.entity"),
        include_deleted=include_deleted,
        limit=limit,
        after=keyset_after(cursor),
    )
    found = await gateway.ask(request, LineageEdgeList, service=SERVICE)
    return LineageEdgePage(items=found.items, next_cursor=keyset_next(found.items, found.more))


async def get_edge(gateway: Gateway, principal: Principal, edge_id: UUID) -> LineageEdgeView:
    request = GetLineageEdge(tenant_id=principal.tenant_id, edge_id=edge_id)
    return await gateway.ask(request, LineageEdgeView, service=SERVICE)


async def delete_edge(
    gateway: Gateway, principal: Principal, edge_id: UUID, *, reason: str | None
) -> None:
    """Mark the edge deleted: it leaves the graph but stays in the record."""
    request = DeleteLineageEdge(
        tenant_id=principal.tenant_id, edge_id=edge_id, deleted_by=principal.subject, reason=reason
    )
    await gateway.ask(request, Done, service=SERVICE)


async def restore_edge(
    gateway: Gateway, principal: Principal, edge_id: UUID, *, reason: str | None
) -> LineageEdgeView:
    request = RestoreLineageEdge(
        tenant_id=principal.tenant_id,
        edge_id=edge_id,
        restored_by=principal.subject,
        reason=reason,
    )
    return await gateway.ask(request, LineageEdgeView, service=SERVICE)


async def edge_audit(gateway: Gateway, principal: Principal, edge_id: UUID) -> LineageEdgeAudit:
    request = GetLineageEdgeAudit(tenant_id=principal.tenant_id, edge_id=edge_id)
    return await gateway.ask(request, LineageEdgeAudit, service=SERVICE)
