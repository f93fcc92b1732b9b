"""Lineage: the graph (viewer), and its management by admins; the lineage service answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.api import NoNulStr
from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    Done,
    LineageEdgeAddResult,
    LineageEdgeIn,
    LineageEdgeList,
    LineageEdgePage,
    LineageEdgeView,
    ListLineageEdges,
)
from controlroom_contracts.rpc import LineageGraph, LineageGraphQuery
from controlroom_gateway.deps import AskerDep, CurrentAdmin, CurrentPrincipal
from controlroom_gateway.errors import PROBLEM
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.pagination import keyset_after, keyset_next

router = APIRouter(prefix="/api/v1/lineage", tags=["lineage"], route_class=InteroperableJsonRoute)

Entity = Annotated[NoNulStr, Query(min_length=1, max_length=512, examples=["schema.table"])]


@router.get(
    "/graph",
    response_model=LineageGraph,
    summary="Upstream and downstream lineage of an entity (schema.table)",
    responses={401: PROBLEM, 503: PROBLEM},
)
async def lineage_graph(
    principal: CurrentPrincipal,
    ask: AskerDep,
    entity: Entity,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Query(ge=1, le=10)] = 1,
) -> LineageGraph:
    query = LineageGraphQuery(
        tenant_id=principal.tenant_id, entity=entity, direction=direction, depth=depth
    )
    return await ask(query, LineageGraph, service="lineage")


@router.post(
    "/edges",
    status_code=status.HTTP_201_CREATED,
    response_model=LineageEdgeView,
    summary="Add an edge by hand (admin); the same live edge again answers 200 with it",
    responses={
        200: {"model": LineageEdgeView, "description": "The edge already existed"},
        401: PROBLEM,
        403: PROBLEM,
        422: PROBLEM,
        503: PROBLEM,
    },
)
async def add_edge(
    body: LineageEdgeIn, principal: CurrentAdmin, ask: AskerDep, response: Response
) -> LineageEdgeView:
    request = AddLineageEdge(tenant_id=principal.tenant_id, edge=body, created_by=principal.subject)
    result = await ask(request, LineageEdgeAddResult, service="lineage")
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.edge


@router.get(
    "/edges",
    response_model=LineageEdgePage,
    summary="The tenant's edges, oldest first, optionally those touching one entity",
    responses={401: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_edges(
    principal: CurrentPrincipal,
    ask: AskerDep,
    entity: Entity | None = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LineageEdgePage:
    request = ListLineageEdges(
        tenant_id=principal.tenant_id,
        entity=entity,
        include_deleted=include_deleted,
        limit=limit,
        after=keyset_after(cursor),
    )
    found = await ask(request, LineageEdgeList, service="lineage")
    return LineageEdgePage(items=found.items, next_cursor=keyset_next(found.items, found.more))


@router.delete(
    "/edges/{edge_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mark an edge deleted (admin); it leaves the graph but stays in the record",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM},
)
async def delete_edge(edge_id: UUID, principal: CurrentAdmin, ask: AskerDep) -> Response:
    request = DeleteLineageEdge(
        tenant_id=principal.tenant_id, edge_id=edge_id, deleted_by=principal.subject
    )
    await ask(request, Done, service="lineage")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
