"""Every event of the run flow (ARCHITECTURE.md, "The flow"), past tense, one subject each."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from controlroom_contracts import subjects
from controlroom_contracts.api import FailureReason, JobRequest
from controlroom_contracts.base import Event, RunMessage


class Decision(RunMessage, Event):
    """A decision of the scheduler, the one authority over a run's status.

    ``sequence`` numbers a run's decisions in the order the scheduler took them, so a reader
    keeps the latest even when two scheduler replicas' publishes arrive out of order.
    """

    sequence: int | None = Field(
        default=None, ge=1, description="The run's decisions, numbered from 1 in order"
    )


class JobSubmitted(RunMessage, Event):
    """A job was accepted for execution; the run id is assigned by the submitter."""

    subject: ClassVar[str] = subjects.JOB_SUBMITTED
    event_type: Literal["job.submitted"] = "job.submitted"
    job: JobRequest
    submitted_by: str | None = Field(default=None, description="The token subject that submitted")
    schedule_id: UUID | None = Field(
        default=None, description="The schedule whose tick submitted it; null for other runs"
    )
    scheduled_for: datetime | None = Field(
        default=None, description="The tick it was submitted for (a scheduled run only)"
    )


class RunQueued(Decision):
    """The scheduler accepted the run; it waits for a slot. Carries the resolved policy."""

    subject: ClassVar[str] = subjects.RUN_QUEUED
    event_type: Literal["run.queued"] = "run.queued"
    job_type: str
    executor_kind: str
    lane: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    session_id: UUID | None = None


class RunDispatched(Decision):
    subject: ClassVar[str] = subjects.RUN_DISPATCHED
    event_type: Literal["run.dispatched"] = "run.dispatched"
    attempt: int = Field(ge=1)
    executor_kind: str


class RunStarted(Decision):
    subject: ClassVar[str] = subjects.RUN_STARTED
    event_type: Literal["run.started"] = "run.started"
    attempt: int = Field(ge=1)
    executor_kind: str
    executor_id: str
    sandboxed: bool
    image: str | None = Field(default=None, description="The image the attempt runs in")


class AttemptStarted(RunMessage, Event):
    """An executor's report: it claimed the attempt and started it."""

    subject: ClassVar[str] = subjects.ATTEMPT_STARTED
    event_type: Literal["attempt.started"] = "attempt.started"
    attempt: int = Field(ge=1)
    executor_kind: str
    executor_id: str
    sandboxed: bool
    image: str | None = Field(default=None, description="The image the attempt runs in")


class AttemptCompleted(RunMessage, Event):
    """An executor's report: the attempt's job exited 0."""

    subject: ClassVar[str] = subjects.ATTEMPT_COMPLETED
    event_type: Literal["attempt.completed"] = "attempt.completed"
    attempt: int = Field(ge=1)
    exit_code: int = 0
    summary: str
    finished_at: datetime


class AttemptFailed(RunMessage, Event):
    """An executor's report: the attempt ended badly. Whether the run fails is the
    scheduler's decision (it may retry)."""

    subject: ClassVar[str] = subjects.ATTEMPT_FAILED
    event_type: Literal["attempt.failed"] = "attempt.failed"
    attempt: int = Field(ge=1)
    failure_reason: FailureReason
    exit_code: int | None = None
    error: str
    finished_at: datetime


class AttemptCancelled(RunMessage, Event):
    """An executor's report: it stopped the attempt because the run was cancelled."""

    subject: ClassVar[str] = subjects.ATTEMPT_CANCELLED
    event_type: Literal["attempt.cancelled"] = "attempt.cancelled"
    attempt: int = Field(ge=1)
    reason: str
    finished_at: datetime


AttemptReport = AttemptStarted | AttemptCompleted | AttemptFailed | AttemptCancelled


class RunHeartbeat(RunMessage, Event):
    """Liveness of a running attempt; a plain NATS message, not persisted."""

    subject: ClassVar[str] = subjects.RUN_HEARTBEAT
    event_type: Literal["run.heartbeat"] = "run.heartbeat"
    attempt: int = Field(ge=1)
    executor_id: str


class RunProgress(RunMessage, Event):
    subject: ClassVar[str] = subjects.RUN_PROGRESS
    event_type: Literal["run.progress"] = "run.progress"
    attempt: int = Field(ge=1)
    percent: float | None = Field(default=None, ge=0, le=100)
    message: str | None = None


class RunLog(RunMessage, Event):
    subject: ClassVar[str] = subjects.RUN_LOG
    event_type: Literal["run.log"] = "run.log"
    attempt: int = Field(ge=1)
    stream: Literal["stdout", "stderr"]
    lines: list[str]


class ArtifactStored(RunMessage, Event):
    """An artifact of the run is in the object store (uploaded, or written under output/)."""

    subject: ClassVar[str] = subjects.ARTIFACT_STORED
    event_type: Literal["run.artifact_stored"] = "run.artifact_stored"
    attempt: int = Field(ge=1)
    artifact_id: UUID
    path: str
    size_bytes: int = Field(ge=0)
    checksum: str = Field(description="sha256:<hex>")
    content_type: str
    storage_key: str | None = Field(default=None, description="Key in the object store")


class ArtifactDeleted(RunMessage, Event):
    """An admin deleted one of the run's artifacts; its object is gone from the store."""

    subject: ClassVar[str] = subjects.ARTIFACT_DELETED
    event_type: Literal["run.artifact_deleted"] = "run.artifact_deleted"
    artifact_id: UUID
    path: str
    deleted_by: str


class ArtifactReported(RunMessage, Event):
    """A job or an internal system reported an artifact it keeps somewhere itself."""

    subject: ClassVar[str] = subjects.ARTIFACT_REPORTED
    event_type: Literal["run.artifact_reported"] = "run.artifact_reported"
    attempt: int = Field(ge=1)
    path: str
    url: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    checksum: str | None = None
    content_type: str | None = None


class RunCompleted(Decision):
    subject: ClassVar[str] = subjects.RUN_COMPLETED
    event_type: Literal["run.completed"] = "run.completed"
    attempt: int = Field(ge=1)
    exit_code: int = 0
    summary: str
    finished_at: datetime


class RunFailed(Decision):
    subject: ClassVar[str] = subjects.RUN_FAILED
    event_type: Literal["run.failed"] = "run.failed"
    attempt: int = Field(ge=0, description="0 when the run failed before any attempt started")
    failure_reason: FailureReason
    exit_code: int | None = None
    error: str
    finished_at: datetime


class RunCancelled(Decision):
    subject: ClassVar[str] = subjects.RUN_CANCELLED
    event_type: Literal["run.cancelled"] = "run.cancelled"
    attempt: int = Field(ge=0)
    reason: str
    finished_at: datetime


class CancelRequested(RunMessage, Event):
    subject: ClassVar[str] = subjects.CANCEL_REQUESTED
    event_type: Literal["run.cancel_requested"] = "run.cancel_requested"
    requested_by: str


class ContinueCallbackReceived(RunMessage, Event):
    """The Continue IDE/CLI reported on a run (PRD FR-5); recorded in the run's history."""

    subject: ClassVar[str] = subjects.CONTINUE_CALLBACK_RECEIVED
    event_type: Literal["run.continue_callback"] = "run.continue_callback"
    status: str
    summary: str | None = None
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    received_from: str


class RunRetryScheduled(Decision):
    """An attempt failed and the run will be tried again: it is queued again with the next
    attempt number, and may not be dispatched before ``retry_at``."""

    subject: ClassVar[str] = subjects.RUN_RETRY_SCHEDULED
    event_type: Literal["run.retry_scheduled"] = "run.retry_scheduled"
    failed_attempt: int = Field(ge=1)
    next_attempt: int = Field(ge=2)
    retry_at: datetime
    reason: FailureReason
    exit_code: int | None = None
    error: str | None = None
    finished_at: datetime | None = Field(default=None, description="When the attempt ended")


class LineageRecorded(RunMessage, Event):
    """A completed run's lineage: an edge from every declared source to every target."""

    subject: ClassVar[str] = subjects.LINEAGE_RECORDED
    event_type: Literal["lineage.recorded"] = "lineage.recorded"
    job: str
    sources: list[str]
    targets: list[str]
    edges: int = Field(ge=0, description="Edges the run was recorded on")
    new_edges: int = Field(ge=0, description="Of those, edges no run had recorded before")


class WebhookDelivered(RunMessage, Event):
    subject: ClassVar[str] = subjects.WEBHOOK_DELIVERED
    event_type: Literal["webhook.delivered"] = "webhook.delivered"
    delivery_id: UUID
    kind: Literal["on_complete", "on_fail", "on_progress", "endpoint"]
    endpoint_id: UUID | None = Field(default=None, description="Set when kind is endpoint")
    url: str
    status_code: int
    attempts: int = Field(ge=1)


class WebhookFailed(RunMessage, Event):
    subject: ClassVar[str] = subjects.WEBHOOK_FAILED
    event_type: Literal["webhook.failed"] = "webhook.failed"
    delivery_id: UUID
    kind: Literal["on_complete", "on_fail", "on_progress", "endpoint"]
    endpoint_id: UUID | None = Field(default=None, description="Set when kind is endpoint")
    url: str
    error: str
    attempts: int = Field(ge=1)


class WebhookEndpointAdded(Event):
    """An admin added a tenant webhook endpoint (the secret never travels in an event)."""

    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_ADDED
    event_type: Literal["webhook.endpoint_added"] = "webhook.endpoint_added"
    endpoint_id: UUID
    url: str
    event_types: list[str]
    added_by: str


class WebhookEndpointRemoved(Event):
    subject: ClassVar[str] = subjects.WEBHOOK_ENDPOINT_REMOVED
    event_type: Literal["webhook.endpoint_removed"] = "webhook.endpoint_removed"
    endpoint_id: UUID
    removed_by: str


class LineageEdgeAdded(Event):
    """An admin added an edge by hand (run-produced edges are LineageRecorded)."""

    subject: ClassVar[str] = subjects.LINEAGE_EDGE_ADDED
    event_type: Literal["lineage.edge_added"] = "lineage.edge_added"
    edge_id: UUID
    source_entity: str
    target_entity: str
    edge_type: str
    added_by: str


class LineageEdgeRemoved(Event):
    """An admin marked an edge deleted; it stays in the table with deleted_at (append-only)."""

    subject: ClassVar[str] = subjects.LINEAGE_EDGE_REMOVED
    event_type: Literal["lineage.edge_removed"] = "lineage.edge_removed"
    edge_id: UUID
    removed_by: str
    reason: str | None = None


class LineageEdgeRestored(Event):
    """An admin restored an edge marked deleted: it is back in the graph."""

    subject: ClassVar[str] = subjects.LINEAGE_EDGE_RESTORED
    event_type: Literal["lineage.edge_restored"] = "lineage.edge_restored"
    edge_id: UUID
    restored_by: str
    reason: str | None = None


ALL_EVENTS: tuple[type[Event], ...] = (
    JobSubmitted,
    RunQueued,
    RunDispatched,
    RunStarted,
    AttemptStarted,
    AttemptCompleted,
    AttemptFailed,
    AttemptCancelled,
    RunHeartbeat,
    RunProgress,
    RunLog,
    ArtifactStored,
    ArtifactReported,
    ArtifactDeleted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    CancelRequested,
    ContinueCallbackReceived,
    RunRetryScheduled,
    LineageRecorded,
    WebhookDelivered,
    WebhookFailed,
    WebhookEndpointAdded,
    WebhookEndpointRemoved,
    LineageEdgeAdded,
    LineageEdgeRemoved,
    LineageEdgeRestored,
)

EVENT_BY_SUBJECT: dict[str, type[Event]] = {e.subject: e for e in ALL_EVENTS}
