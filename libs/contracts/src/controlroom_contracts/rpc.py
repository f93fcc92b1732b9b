"""Request-reply queries between services (NATS request/response)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from controlroom_contracts import subjects
from controlroom_contracts.api import NoNulStr, QueueReason
from controlroom_contracts.resources import LimitsView


class LineageGraphQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.LINEAGE_GRAPH_QUERY
    tenant_id: str = Field(min_length=1)
    entity: NoNulStr = Field(min_length=1, max_length=512)
    direction: Literal["upstream", "downstream", "both"] = "both"
    depth: int = Field(default=1, ge=1, le=10)


class LineageNode(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity: str
    job_id: UUID | None = Field(
        description="The run that produced the edge (a submission is one job run); "
        "null for an edge an admin added"
    )
    job_type: str | None = None
    depth: int = Field(ge=1)


class LineageGraph(BaseModel):
    """PRD FR-6 shape: the entity, what feeds it and what it feeds."""

    model_config = ConfigDict(frozen=True)

    entity: str
    upstream: list[LineageNode] = Field(default_factory=list)
    downstream: list[LineageNode] = Field(default_factory=list)


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
