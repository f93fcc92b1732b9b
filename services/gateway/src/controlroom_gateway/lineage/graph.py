"""The lineage graph around an entity (JSON as the lineage service wrote it, or Mermaid or
Graphviz DOT text), and OpenLineage events taken in; the lineage service answers."""

from __future__ import annotations

from typing import Literal

from controlroom_contracts.entities import EntityNameError, canonical_entity
from controlroom_contracts.management import OpenLineageRecorded
from controlroom_contracts.openlineage import OpenLineageRunEvent
from controlroom_contracts.rpc import GraphFormat, LineageGraph, LineageGraphQuery
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import InvalidRequest
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.lineage.openlineage_in import openlineage_request
from controlroom_gateway.lineage.render import to_dot, to_mermaid

SERVICE = "lineage"


def entity_param(value: str, field: str) -> str:
    """The canonical form of ``value``; a 422 naming ``field`` when it is no entity name."""
    try:
        return canonical_entity(value)
    except EntityNameError as exc:
        raise InvalidRequest(
            f"{field}: {exc}", errors=[{"field": field, "message": str(exc), "type": "entity"}]
        ) from None


async def lineage_graph(
    gateway: Gateway,
    principal: Principal,
    *,
    entity: str,
    direction: Literal["upstream", "downstream", "both"],
    depth: int,
    limit: int,
    include_deleted: bool,
    format: GraphFormat,  # noqa: A002 - the name the API gives it
) -> bytes | str:
    """The graph of the tenant's live edges from ``entity`` up to ``depth`` hops, at most
    ``limit`` nodes: a ``LineageGraph``'s JSON (bytes) for ``json``, else the text."""
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
        return await gateway.ask.json(query, service=SERVICE)
    graph = await gateway.ask(query, LineageGraph, service=SERVICE)
    return to_mermaid(graph) if format == "mermaid" else to_dot(graph)


async def record_openlineage(
    gateway: Gateway, principal: Principal, event: OpenLineageRunEvent
) -> OpenLineageRecorded:
    """Record the edges of a COMPLETE OpenLineage RunEvent (others record nothing)."""
    request = openlineage_request(event, principal.tenant_id, principal.subject)
    return await gateway.ask(request, OpenLineageRecorded, service=SERVICE)
