"""Lineage: the graph (viewer), OpenLineage events in (operator), and the edges' management by
admins with their audit trail; the lineage service answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.management import (
    EdgeChangeIn,
    LineageEdgeAudit,
    LineageEdgeIn,
    LineageEdgePage,
    LineageEdgeView,
    OpenLineageRecorded,
)
from controlroom_contracts.openlineage import OpenLineageRunEvent
from controlroom_contracts.rpc import MAX_GRAPH_NODES, GraphFormat, LineageGraph
from controlroom_gateway.api.deps import CurrentAdmin, CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.entity_params import EntityParam
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.lineage import edges, graph

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
    gateway: GatewayDep,
    entity: EntityParam,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Query(ge=1, le=10)] = 1,
    limit: Annotated[
        int, Query(ge=1, le=MAX_GRAPH_NODES, description="The most nodes to return")
    ] = 500,
    include_deleted: bool = False,
    format: GraphFormat = "json",  # noqa: A002 - the query parameter's public name
) -> Response:
    found = await graph.lineage_graph(
        gateway,
        principal,
        entity=entity,
        direction=direction,
        depth=depth,
        limit=limit,
        include_deleted=include_deleted,
        format=format,
    )
    if format == "json":
        return Response(found, media_type="application/json")
    return Response(found, media_type=MERMAID if format == "mermaid" else DOT)


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
    event: OpenLineageRunEvent, principal: CurrentOperator, gateway: GatewayDep
) -> OpenLineageRecorded:
    return await graph.record_openlineage(gateway, principal, event)


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
    body: LineageEdgeIn, principal: CurrentAdmin, gateway: GatewayDep, response: Response
) -> LineageEdgeView:
    result = await edges.add_edge(gateway, principal, body)
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
    gateway: GatewayDep,
    entity: EntityParam | None = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LineageEdgePage:
    return await edges.list_edges(
        gateway,
        principal,
        entity=entity,
        include_deleted=include_deleted,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/edges/{edge_id}",
    response_model=LineageEdgeView,
    summary="One edge, deleted or not",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def get_edge(
    edge_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep
) -> LineageEdgeView:
    return await edges.get_edge(gateway, principal, edge_id)


@router.delete(
    "/edges/{edge_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mark an edge deleted (admin); it leaves the graph but stays in the record",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def delete_edge(
    edge_id: UUID,
    principal: CurrentAdmin,
    gateway: GatewayDep,
    reason: Annotated[str | None, Query(max_length=1_000)] = None,
) -> Response:
    await edges.delete_edge(gateway, principal, edge_id, reason=reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/edges/{edge_id}/restore",
    response_model=LineageEdgeView,
    summary="Restore an edge marked deleted (admin); restoring a live edge changes nothing",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def restore_edge(
    edge_id: UUID, principal: CurrentAdmin, gateway: GatewayDep, body: EdgeChangeIn | None = None
) -> LineageEdgeView:
    reason = body.reason if body else None
    return await edges.restore_edge(gateway, principal, edge_id, reason=reason)


@router.get(
    "/edges/{edge_id}/audit",
    response_model=LineageEdgeAudit,
    summary="Every change to an edge, oldest first: created, deleted, restored, by whom, when",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def edge_audit(
    edge_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep
) -> LineageEdgeAudit:
    return await edges.edge_audit(gateway, principal, edge_id)
