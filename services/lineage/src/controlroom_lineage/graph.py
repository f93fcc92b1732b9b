"""The graph around an entity: a breadth-first walk, one indexed query per hop and direction.

A recursive CTE would enumerate paths, not nodes: with hub tables (thousands of neighbours)
the number of paths explodes at depth 3 while the number of nodes stays bounded. Walking hop by
hop keeps a visited set, so each node is expanded once, cycles end by themselves, and the node
limit stops the walk as soon as it is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.rpc import LineageGraphQuery
from controlroom_lineage.store import edges

Direction = Literal["upstream", "downstream"]

EDGES_PER_NODE = 4
"""Edges fetched per hop are capped at this many per node of the limit: a hub's thousands of
edges are not read to keep a few hundred of them."""

REPLY_BUDGET = 900_000
"""Bytes: the answer travels as one NATS reply (1 MiB by default, headers included)."""

_COLUMNS = (
    edges.c.id,
    edges.c.source_entity,
    edges.c.target_entity,
    edges.c.job_name,
    edges.c.edge_type,
    edges.c.origin,
    edges.c.run_count,
    edges.c.latest_run_id,
    edges.c.latest_run_at,
    edges.c.deleted_at,
)


@dataclass
class _Walk:
    root: str
    limit: int
    depth_of: dict[str, int] = field(default_factory=dict)
    edges: dict[UUID, sa.Row[Any]] = field(default_factory=dict)
    reached: dict[Direction, list[dict[str, Any]]] = field(
        default_factory=lambda: {"upstream": [], "downstream": []}
    )
    truncated: bool = False

    def __post_init__(self) -> None:
        self.depth_of[self.root] = 0


def _hop_query(
    tenant_id: str, direction: Direction, frontier: list[str], cap: int, include_deleted: bool
) -> sa.Select[Any]:
    match = edges.c.target_entity if direction == "upstream" else edges.c.source_entity
    reach = edges.c.source_entity if direction == "upstream" else edges.c.target_entity
    # One array parameter, not an IN list of one parameter per entity: the statement's text
    # is then the same for every frontier, so Postgres plans it once per connection.
    in_frontier = match == sa.any_(sa.literal(frontier, type_=ARRAY(sa.Text)))
    query = sa.select(*_COLUMNS).where(edges.c.tenant_id == tenant_id, in_frontier)
    if not include_deleted:
        query = query.where(edges.c.deleted_at.is_(None))
    # Ordered, so which edges a capped hop keeps is the same on every call.
    return query.order_by(match, reach, edges.c.job_name).limit(cap)


async def _walk_direction(
    session: AsyncSession, walk: _Walk, query: LineageGraphQuery, direction: Direction
) -> None:
    cap = walk.limit * EDGES_PER_NODE
    frontier = [walk.root]
    seen_here = {walk.root}
    for hop in range(1, query.depth + 1):
        if len(walk.depth_of) >= walk.limit:
            # Full: another hop could add only edges between nodes already shown, at the cost
            # of reading every edge of the frontier (a hub's thousands of consumers).
            walk.truncated = True
            return
        rows = (
            await session.execute(
                _hop_query(query.tenant_id, direction, frontier, cap, query.include_deleted)
            )
        ).all()
        if len(rows) == cap:
            walk.truncated = True
        frontier = []
        for row in rows:
            other = row.source_entity if direction == "upstream" else row.target_entity
            if other not in walk.depth_of:
                if len(walk.depth_of) >= walk.limit:
                    walk.truncated = True
                    continue
                walk.depth_of[other] = hop
            elif hop < walk.depth_of[other]:  # nearer this way than the other direction's
                walk.depth_of[other] = hop
            walk.edges[row.id] = row
            if other not in seen_here:
                seen_here.add(other)
                frontier.append(other)
                walk.reached[direction].append(
                    {
                        "entity": other,
                        "job_id": row.latest_run_id,
                        "job": row.job_name,
                        "depth": hop,
                    }
                )
        if not frontier:
            return


def _edge(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source_entity,
        "target": row.target_entity,
        "job": row.job_name,
        "edge_type": row.edge_type,
        "origin": row.origin,
        "run_count": row.run_count,
        "latest_run_id": row.latest_run_id,
        "latest_run_at": row.latest_run_at,
        "deleted": row.deleted_at is not None,
    }


async def lineage_graph(session: AsyncSession, query: LineageGraphQuery) -> bytes:
    """The graph as the JSON of a ``LineageGraph``, built from rows and serialised once: at
    hundreds of nodes and thousands of edges, models for each would cost more than the walk."""
    walk = _Walk(root=query.entity, limit=query.limit)
    if query.direction in ("upstream", "both"):
        await _walk_direction(session, walk, query, "upstream")
    if query.direction in ("downstream", "both"):
        await _walk_direction(session, walk, query, "downstream")
    graph: dict[str, Any] = {
        "entity": query.entity,
        "upstream": walk.reached["upstream"],
        "downstream": walk.reached["downstream"],
        "nodes": [
            {"entity": e, "depth": d}
            for e, d in sorted(walk.depth_of.items(), key=lambda item: item[1])
        ],
        "edges": [_edge(r) for r in walk.edges.values()],
        "truncated": walk.truncated,
    }
    return fit_reply(graph)


def fit_reply(graph: dict[str, Any]) -> bytes:
    """The graph's JSON, cut farthest nodes first until it fits in one reply."""
    answer = to_json(graph)
    while len(answer) > REPLY_BUDGET and len(graph["nodes"]) > 1:
        nodes = graph["nodes"]
        keep = {n["entity"] for n in nodes[: max(1, len(nodes) * 3 // 4)]}
        graph = {
            "entity": graph["entity"],
            "nodes": [n for n in nodes if n["entity"] in keep],
            "edges": [e for e in graph["edges"] if e["source"] in keep and e["target"] in keep],
            "upstream": [n for n in graph["upstream"] if n["entity"] in keep],
            "downstream": [n for n in graph["downstream"] if n["entity"] in keep],
            "truncated": True,
        }
        answer = to_json(graph)
    return answer
