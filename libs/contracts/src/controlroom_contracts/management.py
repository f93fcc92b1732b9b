"""Tenant administration owned by other services: webhook endpoints (notifier), lineage edges.

The gateway takes the REST bodies, then asks the owning service over NATS request-reply, so
the answer (the new id, the secret shown once, a 404) is the owner's own and immediate. Each
request carries the caller's tenant; the owner filters by it in every query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from controlroom_contracts import subjects
from controlroom_contracts.api import ApiModel, JobName, NoNulStr
from controlroom_contracts.entities import CanonicalEntity
from controlroom_contracts.rpc import EdgeOrigin

WebhookEventType = Literal["run.completed", "run.failed", "run.cancelled"]
WEBHOOK_EVENT_TYPES: tuple[WebhookEventType, ...] = ("run.completed", "run.failed", "run.cancelled")

EntityName = CanonicalEntity
EDGE_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class Page(ApiModel):
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


# -- webhook endpoints: REST ---------------------------------------------------------------


class WebhookEndpointIn(ApiModel):
    """The body of ``POST /api/v1/webhook-endpoints``: where the tenant's run events go."""

    url: AnyHttpUrl = Field(description="http(s); private addresses only when allow-listed")
    event_types: list[WebhookEventType] = Field(
        default_factory=lambda: list(WEBHOOK_EVENT_TYPES), min_length=1, max_length=3
    )
    description: str = Field(default="", max_length=500)

    @field_validator("url")
    @classmethod
    def _short_enough(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > 2_048:
            raise ValueError("at most 2048 characters")
        return url

    @field_validator("event_types")
    @classmethod
    def _unique(cls, types: list[WebhookEventType]) -> list[WebhookEventType]:
        return sorted(set(types))


class WebhookEndpointView(ApiModel):
    id: UUID
    url: str
    event_types: list[WebhookEventType]
    description: str
    created_by: str
    created_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointView):
    secret: str = Field(
        description="Standard Webhooks signing secret (`whsec_...`); shown only in this answer"
    )


class WebhookEndpointPage(Page):
    items: list[WebhookEndpointView]


# -- webhook deliveries: REST ----------------------------------------------------------------

WebhookDeliveryStatus = Literal["pending", "delivered", "failed"]
WebhookDeliveryKind = Literal["on_complete", "on_fail", "on_progress", "endpoint"]


class WebhookDeliveryView(ApiModel):
    """One webhook the notifier owes: a job's callback or a tenant endpoint's event."""

    id: UUID = Field(
        description="Sent as the `webhook-id` header by every attempt, redeliveries included, "
        "so a receiver can drop what it already processed"
    )
    run_id: UUID
    kind: WebhookDeliveryKind
    endpoint_id: UUID | None = Field(description="The tenant endpoint, when kind is endpoint")
    url: str
    status: WebhookDeliveryStatus = Field(
        description="pending: will be attempted (again); delivered: a 2xx answer; failed: "
        "attempts used up or refused for good, kept until redelivered"
    )
    attempts: int = Field(description="Attempts since it was created or last redelivered")
    status_code: int | None = Field(
        description="The HTTP status of the last attempt; null when there was no answer"
    )
    latency_ms: int | None = Field(description="How long the last attempt took")
    last_error: str | None = Field(description="Why the last attempt did not deliver it")
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(
        description="When it will be attempted next; null unless pending"
    )
    delivered_at: datetime | None = Field(description="When it was last delivered")
    redelivered_at: datetime | None = Field(description="When an admin last redelivered it")
    created_at: datetime


class WebhookDeliveryPage(Page):
    items: list[WebhookDeliveryView]


class RedeliveryCount(ApiModel):
    redelivered: int = Field(ge=0, description="How many deliveries were scheduled again")


# -- lineage edges: REST -------------------------------------------------------------------


class LineageEdgeIn(ApiModel):
    """The body of ``POST /api/v1/lineage/edges``: an edge no run produced (manual lineage)."""

    source: EntityName
    target: EntityName
    job: JobName = Field(
        default="manual", description="The job that moves the data; part of the edge's identity"
    )
    edge_type: str = Field(default="data_flow", pattern=EDGE_TYPE_PATTERN)
    metadata: dict[
        Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=1_000)]
    ] = Field(default_factory=dict, max_length=32)


class LineageEdgeView(ApiModel):
    """An edge: identified by (tenant, source, target, job), however many runs recorded it."""

    id: UUID
    source: str
    target: str
    job: str
    edge_type: str
    origin: EdgeOrigin = Field(
        description="What first recorded it: a run, an OpenLineage event, or an admin"
    )
    run_count: int = Field(ge=0, description="Runs that recorded it (0 for a manual edge)")
    latest_run_id: UUID | None
    latest_run_at: datetime | None
    metadata: dict[str, str]
    created_by: str | None
    created_at: datetime
    deleted_at: datetime | None = Field(description="Edges are never erased, only marked deleted")
    deleted_by: str | None = None
    delete_reason: str | None = None


class LineageEdgePage(Page):
    items: list[LineageEdgeView]


AuditAction = Literal["created", "deleted", "restored"]


class LineageEdgeChange(ApiModel):
    """One change to an edge, oldest first; run references are counted on the edge instead."""

    action: AuditAction
    actor: str = Field(description="Who: a token subject, run:<id> or openlineage:<producer>")
    reason: str | None
    at: datetime


class LineageEdgeAudit(ApiModel):
    edge_id: UUID
    changes: list[LineageEdgeChange]


class EdgeChangeIn(ApiModel):
    """The optional body of a restore; a deletion takes ``reason`` as a query parameter."""

    reason: str | None = Field(default=None, max_length=1_000)


class DatasetRun(ApiModel):
    run_id: UUID
    job: str
    at: datetime


class DatasetView(ApiModel):
    """An entity of the catalogue: every name a run or an event declared."""

    entity: str
    first_seen_at: datetime
    last_produced: DatasetRun | None = Field(description="The latest run that wrote it")
    last_consumed: DatasetRun | None = Field(description="The latest run that read it")
    upstream_edges: int | None = Field(
        default=None, description="Live edges into it (on a single dataset only)"
    )
    downstream_edges: int | None = Field(
        default=None, description="Live edges out of it (on a single dataset only)"
    )


class DatasetPage(Page):
    items: list[DatasetView]


# -- request-reply to the owning service ----------------------------------------------------


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str]
    tenant_id: str = Field(min_length=1, max_length=128)


class Cursor(BaseModel):
    """Keyset position: the last item of the previous page."""

    model_config = ConfigDict(frozen=True)

    created_at: datetime
    id: UUID


class Done(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID


class CreateWebhookEndpoint(Request):
    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_CREATE
    endpoint: WebhookEndpointIn
    created_by: str = Field(min_length=1, max_length=256)


class ListWebhookEndpoints(Request):
    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_LIST
    limit: int = Field(default=50, ge=1, le=200)
    after: Cursor | None = None


class WebhookEndpointList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[WebhookEndpointView]
    more: bool


class GetWebhookEndpoint(Request):
    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_GET
    endpoint_id: UUID


class DeleteWebhookEndpoint(Request):
    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_DELETE
    endpoint_id: UUID
    deleted_by: str = Field(min_length=1, max_length=256)


class ListWebhookDeliveries(Request):
    """Newest first; ``after`` is the last item of the previous page."""

    subject: ClassVar[str] = subjects.WEBHOOK_DELIVERY_LIST
    status: WebhookDeliveryStatus | None = None
    run_id: UUID | None = None
    limit: int = Field(default=50, ge=1, le=200)
    after: Cursor | None = None


class WebhookDeliveryList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[WebhookDeliveryView]
    more: bool


class RedeliverWebhookDelivery(Request):
    """Attempt one delivery again, under the same id, with its attempts counted from zero."""

    subject: ClassVar[str] = subjects.WEBHOOK_DELIVERY_REDELIVER
    delivery_id: UUID
    requested_by: str = Field(min_length=1, max_length=256)


class RedeliverWebhookDeliveries(Request):
    """Attempt again every failed delivery of the tenant (of one run, with ``run_id``)."""

    subject: ClassVar[str] = subjects.WEBHOOK_DELIVERY_REDELIVER_ALL
    status: Literal["failed"] = "failed"
    run_id: UUID | None = None
    requested_by: str = Field(min_length=1, max_length=256)


class AddLineageEdge(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_ADD
    edge: LineageEdgeIn
    created_by: str = Field(min_length=1, max_length=256)


class LineageEdgeAddResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    edge: LineageEdgeView
    created: bool = Field(description="False when the same edge already existed")


class ListLineageEdges(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_LIST
    entity: EntityName | None = None
    include_deleted: bool = False
    limit: int = Field(default=50, ge=1, le=200)
    after: Cursor | None = None


class LineageEdgeList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[LineageEdgeView]
    more: bool


class GetLineageEdge(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_GET
    edge_id: UUID


class DeleteLineageEdge(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_DELETE
    edge_id: UUID
    deleted_by: str = Field(min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=1_000)


class RestoreLineageEdge(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_RESTORE
    edge_id: UUID
    restored_by: str = Field(min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=1_000)


class GetLineageEdgeAudit(Request):
    subject: ClassVar[str] = subjects.LINEAGE_EDGE_AUDIT
    edge_id: UUID


class RecordOpenLineage(Request):
    """An OpenLineage RunEvent the gateway accepted, reduced to what the graph keeps."""

    subject: ClassVar[str] = subjects.LINEAGE_OPENLINEAGE_RECORD
    event_type: str
    event_time: datetime
    run_id: UUID
    job: JobName
    producer: str = Field(max_length=1_000)
    recorded_by: str = Field(min_length=1, max_length=256)
    inputs: list[str] = Field(description="Canonical entity names")
    outputs: list[str] = Field(description="Canonical entity names")


class OpenLineageRecorded(BaseModel):
    model_config = ConfigDict(frozen=True)

    edges: int = Field(ge=0, description="Edges the event recorded a run on")
    new_edges: int = Field(ge=0, description="Of those, edges seen for the first time")


class ListDatasets(Request):
    subject: ClassVar[str] = subjects.LINEAGE_DATASET_LIST
    prefix: NoNulStr | None = Field(default=None, max_length=1_024)
    limit: int = Field(default=50, ge=1, le=200)
    after: NoNulStr | None = Field(
        default=None, max_length=1_024, description="The last entity seen"
    )


class DatasetList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[DatasetView]
    more: bool


class GetDataset(Request):
    subject: ClassVar[str] = subjects.LINEAGE_DATASET_GET
    entity: EntityName
