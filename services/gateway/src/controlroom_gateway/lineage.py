"""Lineage: the graph (viewer), OpenLineage events in (operator), and the edges' management by
admins with their audit trail; the lineage service answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    Done,
    EdgeChangeIn,
    GetLineageEdge,
    GetLineageEdgeAudit,
    LineageEdgeAddResult,
    LineageEdgeAudit,
    LineageEdgeIn,
    LineageEdgeList,
    LineageEdgePage,
    LineageEdgeView,
    ListLineageEdges,
    OpenLineageRecorded,
    RestoreLineageEdge,
)
from controlroom_contracts.openlineage import OpenLineageRunEvent
from controlroom_contracts.rpc import MAX_GRAPH_NODES, GraphFormat, LineageGraph, LineageGraphQuery
from controlroom_gateway.deps import AskerDep, CurrentAdmin, CurrentOperator, CurrentPrincipal
from controlroom_gateway.entity_params import EntityParam, entity_param
from controlroom_gateway.errors import PROBLEM
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.lineage_render import to_dot, to_mermaid
from controlroom_gateway.openlineage_in import openlineage_request
from controlroom_gateway.pagination import keyset_after, keyset_next

router = APIRouter(prefix="/api/v1/lineage", tags=["lineage"], route_class=InteroperableJsonRoute)

MERMAID = "text/vnd.mermaid; charset=utf-8"
DOT = "text/vnd.graphviz; charset=utf-8"


@router.get(
    "/graph",
    response_model=LineageGraph,
    summary="Upstream and downstream lineage of an entity, as JSON, Mermaid or Graphviz DOT",
    description="Walks the tenant's live edges from `entity` up to `depth` hops. Each edge "
    "appears once with its job, its latest run and how many runs recorded it; cycles end by "
    "themselves; at `limit` nodes the walk stops and `truncated` is true. `format=mermaid` "
    "and `format=dot` answer the same graph as text for a document.",
    responses={
        200: {"content": {MERMAID.split(";")[0]: {}, DOT.split(";")[0]: {}}},
        401: PROBLEM,
        422: PROBLEM,
        503: PROBLEM,
    },
)
async def lineage_graph(
    principal: CurrentPrincipal,
    ask: AskerDep,
    entity: EntityParam,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Query(ge=1, le=10)] = 1,
    limit: Annotated[
        int, Query(ge=1, le=MAX_GRAPH_NODES, description="The most nodes to return")
    ] = 500,
    include_deleted: bool = False,
    format: GraphFormat = "json",  # noqa: A002 - the query parameter's public name
) -> Response:
    query = LineageGraphQuery(
        tenant_id=principal.tenant_id,
        entity=entity_param(entity, "query.entity"),
        direction=direction,
        depth=depth,
        limit=limit,
        include_deleted=include_deleted,
    )
    if format == "json":
        # Passed on as the lineage service wrote it (a LineageGraph): a graph of thousands of
        # edges is not decoded and encoded again on its way through.
        return Response(await ask.json(query, service="lineage"), media_type="application/json")
    graph = await ask(query, LineageGraph, service="lineage")
    return Response(
        to_mermaid(graph) if format == "mermaid" else to_dot(graph),
        media_type=MERMAID if format == "mermaid" else DOT,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OpenLineageRecorded,
    summary="Take an OpenLineage RunEvent (operator; Marquez-compatible)",
    description="Accepts OpenLineage RunEvents (spec 2-x) as Marquez does, so any OpenLineage "
    "client or integration can point its HTTP transport here. A COMPLETE event records an edge "
    "from each input dataset to each output dataset, under the job `namespace/name`; a "
    "dataset is the entity `namespace/name` (`s3://bucket` + `curated/out` is "
    "`s3://bucket/curated/out`). Other event types are accepted and record nothing.",
    responses={401: PROBLEM, 403: PROBLEM, 413: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def record_openlineage(
    event: OpenLineageRunEvent, principal: CurrentOperator, ask: AskerDep
) -> OpenLineageRecorded:
    request = openlineage_request(event, principal.tenant_id, principal.subject)
    return await ask(request, OpenLineageRecorded, service="lineage")


@router.post(
    "/edges",
    status_code=status.HTTP_201_CREATED,
    response_model=LineageEdgeView,
    summary="Add an edge by hand (admin); the same edge again answers 200 with it",
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
    entity: EntityParam | None = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LineageEdgePage:
    request = ListLineageEdges(
        tenant_id=principal.tenant_id,
        entity=None if entity is None else entity_param(entity, "query.entity"),
        include_deleted=include_deleted,
        limit=limit,
        after=keyset_after(cursor),
    )
    found = await ask(request, LineageEdgeList, service="lineage")
    return LineageEdgePage(items=found.items, next_cursor=keyset_next(found.items, found.more))


@router.get(
    "/edges/{edge_id}",
    response_model=LineageEdgeView,
    summary="One edge, deleted or not",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def get_edge(edge_id: UUID, principal: CurrentPrincipal, ask: AskerDep) -> LineageEdgeView:
    request = GetLineageEdge(tenant_id=principal.tenant_id, edge_id=edge_id)
    return await ask(request, LineageEdgeView, service="lineage")


@router.delete(
    "/edges/{edge_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mark an edge deleted (admin); it leaves the graph but stays in the record",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def delete_edge(
    edge_id: UUID,
    principal: CurrentAdmin,
    ask: AskerDep,
    reason: Annotated[str | None, Query(max_length=1_000)] = None,
) -> Response:
    request = DeleteLineageEdge(
        tenant_id=principal.tenant_id, edge_id=edge_id, deleted_by=principal.subject, reason=reason
    )
    await ask(request, Done, service="lineage")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/edges/{edge_id}/restore",
    response_model=LineageEdgeView,
    summary="Restore an edge marked deleted (admin); restoring a live edge changes nothing",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def restore_edge(
    edge_id: UUID, principal: CurrentAdmin, ask: AskerDep, body: EdgeChangeIn | None = None
) -> LineageEdgeView:
    request = RestoreLineageEdge(
        tenant_id=principal.tenant_id,
        edge_id=edge_id,
        restored_by=principal.subject,
        reason=body.reason if body else None,
    )
    return await ask(request, LineageEdgeView, service="lineage")


@router.get(
    "/edges/{edge_id}/audit",
    response_model=LineageEdgeAudit,
    summary="Every change to an edge, oldest first: created, deleted, restored, by whom, when",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def edge_audit(edge_id: UUID, principal: CurrentPrincipal, ask: AskerDep) -> LineageEdgeAudit:
    request = GetLineageEdgeAudit(tenant_id=principal.tenant_id, edge_id=edge_id)
    return await ask(request, LineageEdgeAudit, service="lineage")
