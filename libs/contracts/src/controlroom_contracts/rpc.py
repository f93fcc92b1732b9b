"""Request-reply queries between services (NATS request/response)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from controlroom_contracts import subjects
from controlroom_contracts.api import QueueReason
from controlroom_contracts.entities import CanonicalEntity
from controlroom_contracts.resources import LimitsView

GraphFormat = Literal["json", "mermaid", "dot"]
MAX_GRAPH_NODES = 2_000


class LineageGraphQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.LINEAGE_GRAPH_QUERY
    tenant_id: str = Field(min_length=1)
    entity: CanonicalEntity
    direction: Literal["upstream", "downstream", "both"] = "both"
    depth: int = Field(default=1, ge=1, le=10)
    limit: int = Field(default=500, ge=1, le=MAX_GRAPH_NODES)
    include_deleted: bool = False


class LineageNode(BaseModel):
    """An entity reached from the queried one, at its nearest hop (PRD FR-6 shape)."""

    model_config = ConfigDict(frozen=True)

    entity: str
    job_id: UUID | None = Field(
        description="The latest run of the edge that reached it at this hop (an OpenLineage "
        "runId for an edge an OpenLineage event recorded); null for an edge an admin added"
    )
    job: str | None = Field(default=None, description="The job of that edge")
    depth: int = Field(ge=1)


class GraphNode(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity: str
    depth: int = Field(ge=0, description="Hops from the queried entity (0: the entity itself)")


EdgeOrigin = Literal["run", "openlineage", "manual"]


class GraphEdge(BaseModel):
    """One edge of the graph, once, however many runs recorded it."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    source: str
    target: str
    job: str = Field(description="The job that moves data from source to target")
    edge_type: str
    origin: EdgeOrigin
    run_count: int = Field(ge=0, description="How many runs recorded this edge")
    latest_run_id: UUID | None
    latest_run_at: datetime | None
    deleted: bool = Field(default=False, description="Only with include_deleted")


class LineageGraph(BaseModel):
    """PRD FR-6 shape (the entity, what feeds it and what it feeds), with the graph itself."""

    model_config = ConfigDict(frozen=True)

    entity: str
    upstream: list[LineageNode] = Field(default_factory=list)
    downstream: list[LineageNode] = Field(default_factory=list)
    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)
    truncated: bool = Field(
        default=False, description="The node limit was reached: there is more beyond these nodes"
    )


class RpcError(BaseModel):
    """The reply when a request cannot be answered."""

    model_config = ConfigDict(frozen=True)

    error: str
    code: Literal["invalid", "not_found", "unavailable"] = Field(
        default="unavailable",
        description="invalid: the request is wrong; not_found: no such thing for this tenant",
    )


class RouteQuery(BaseModel):
    """Which executor kind would run this job type (answered by the scheduler)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.ROUTE_QUERY
    job_type: str = Field(min_length=1, max_length=64)


class RouteAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_type: str
    executor_kind: str | None = Field(description="None when no executor kind is routed")
    image: str | None = Field(
        default=None, description="The image its attempts run in (routing matrix)"
    )


class QueueQuery(BaseModel):
    """Why each of these runs waits and where it stands in line (answered by the scheduler)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.QUEUE_QUERY
    tenant_id: str = Field(min_length=1)
    run_ids: list[UUID] = Field(max_length=500)


class QueueEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: UUID
    reason: QueueReason | None
    position: int = Field(ge=1)
    next_attempt_at: datetime | None = None


class QueueAnswer(BaseModel):
    """Only the runs that are queued now; a run missing here is not waiting."""

    model_config = ConfigDict(frozen=True)

    entries: list[QueueEntry]


class LimitsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.LIMITS_QUERY
    tenant_id: str = Field(min_length=1)


LimitsAnswer = LimitsView
