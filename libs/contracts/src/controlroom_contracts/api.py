"""REST bodies of the public API (PRD FR-1, FR-3)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from controlroom_contracts.repo_urls import validate_repo_ref, validate_repo_url

# Job types of the constitution (seed 002, section 4). Routing to executors is configuration.
KNOWN_JOB_TYPES: tuple[str, ...] = (
    "spark_etl",
    "diagram_export",
    "schema_migration",
    "kb_catalog",
    "code_validation",
)

MAX_CODE_FILES = 200
MAX_PATH_LENGTH = 512
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._\-/]+$")


class RunStatus(StrEnum):
    queued = "queued"
    dispatched = "dispatched"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.completed, RunStatus.failed, RunStatus.cancelled)


class FailureReason(StrEnum):
    exit_code = "exit_code"
    timeout = "timeout"
    oom = "oom"
    lost = "lost"
    executor_error = "executor_error"
    no_route = "no_route"
    checkout = "checkout"
    """The job's repository could not be checked out (git's message is the error)."""
    image_pull = "image_pull"
    """The image could not be pulled or is invalid: retrying would not help."""
    unschedulable = "unschedulable"
    """The cluster could not place the job within the configured time."""
    evicted = "evicted"
    preempted = "preempted"


class QueueReason(StrEnum):
    """Why a queued run is not running yet (null once nothing holds it back)."""

    tenant_cap_reached = "tenant_cap_reached"
    lane_cap_reached = "lane_cap_reached"
    no_executor_capacity = "no_executor_capacity"
    no_executor = "no_executor"
    retry_backoff = "retry_backoff"


DEFAULT_PRIORITY = 3
DEFAULT_MAX_ATTEMPTS = 3
LANE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


def reject_nul(value: str) -> str:
    """Postgres text cannot hold NUL: refuse it at the edge with a clear error."""
    if _contains_nul(value):
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


NoNulStr = Annotated[str, AfterValidator(reject_nul)]


JobName = Annotated[
    NoNulStr,
    Field(
        min_length=1,
        max_length=1_024,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A job's name: a lineage edge is identified by its source, target and job",
        examples=["nightly_orders"],
    ),
]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_anywhere(cls, value: object) -> object:
        if _contains_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class JobSpec(ApiModel):
    text: str = Field(min_length=1, max_length=20_000, description="Natural-language description")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Declared inputs and outputs, e.g. source and target entity URIs",
    )


def safe_relative_path(value: str) -> str:
    """A path inside a run's directory: relative, no '..', '.' or empty segments."""
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or "" in parts or "." in parts:
        raise ValueError("must be a relative path without '..', '.' or empty segments")
    if not _SAFE_PATH.match(value):
        raise ValueError("may only contain letters, digits, '.', '_', '-' and '/'")
    return value


RelativePath = Annotated[
    str, Field(min_length=1, max_length=MAX_PATH_LENGTH), AfterValidator(safe_relative_path)
]


class CodeFile(ApiModel):
    path: RelativePath
    content: str


class CodeBundle(ApiModel):
    files: list[CodeFile] = Field(min_length=1, max_length=MAX_CODE_FILES)
    entrypoint: str | None = Field(
        default=None, description="Path of the file to run; the first file when omitted"
    )

    def entrypoint_path(self) -> str:
        return self.entrypoint or self.files[0].path

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, files: list[CodeFile]) -> list[CodeFile]:
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ValueError("file paths must be unique")
        return files

    @model_validator(mode="after")
    def _entrypoint_is_a_file(self) -> CodeBundle:
        if self.entrypoint is not None and self.entrypoint not in {f.path for f in self.files}:
            raise ValueError(f"entrypoint {self.entrypoint!r} is not one of the code files")
        return self


class RepoRef(ApiModel):
    """A repository the executor checks out into the workspace before the code files."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="https://host/path, ssh://[user@]host/path or [user@]host:path; never with "
        "credentials (they are the executor's configuration). http:// and file:// pass here "
        "and are refused by an executor that does not allow them",
    )
    ref: str = Field(default="main", min_length=1, max_length=256, description="Branch, tag or sha")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = validate_repo_url(value, allow_file=True, allow_insecure_http=True)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        problem = validate_repo_ref(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class Callbacks(ApiModel):
    on_complete: AnyHttpUrl | None = None
    on_fail: AnyHttpUrl | None = None
    on_progress: AnyHttpUrl | None = None


class RetryPolicy(ApiModel):
    """When a failed attempt is tried again, and how long to wait before it is.

    The wait before attempt n+1 is drawn uniformly from 0 to
    ``min(max_backoff_seconds, backoff_seconds * backoff_multiplier ** (n - 1))`` ("full
    jitter"), so retries of many runs that failed together do not arrive together.
    """

    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=10)
    backoff_seconds: float = Field(default=5.0, ge=0, le=3600)
    backoff_multiplier: float = Field(default=2.0, ge=1, le=10)
    max_backoff_seconds: float = Field(default=300.0, ge=0, le=24 * 3600)
    retry_on_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(
        default_factory=list,
        max_length=255,
        description="Non-zero exit codes worth another attempt; any other is final",
    )
    retry_on_timeout: bool = Field(default=False, description="Retry an attempt that timed out")


class JobRequest(ApiModel):
    """The body of ``POST /api/v1/jobs/run``."""

    job_type: Annotated[str, Field(min_length=1, max_length=64, examples=["spark_etl"])]
    spec: JobSpec
    code: CodeBundle
    created_by: str = Field(min_length=1, max_length=256)
    repo: RepoRef | None = None
    callbacks: Callbacks | None = None
    lane: str | None = Field(
        default=None,
        pattern=LANE_PATTERN,
        description="One of the configured lanes (default A, B, C, D); default: the first",
        examples=["A"],
    )
    priority: int = Field(
        default=DEFAULT_PRIORITY, ge=1, le=5, description="1 highest ... 5 lowest, within a lane"
    )
    retry: RetryPolicy | None = Field(
        default=None, description="Default: 3 attempts; lost runs and executor errors retried"
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 3600,
        description="Per attempt; default 600, at most the deployment's maximum (default 3600)",
    )
    session_id: UUID | None = Field(default=None, description="The session the run belongs to")
    name: JobName | None = Field(
        default=None,
        description="The job's name (Databricks' run_name): its lineage edges are recorded "
        "under it; default: the template's name for template and scheduled runs, else the "
        "job type",
    )


class SubmitResponse(ApiModel):
    run_id: UUID
    status: Literal["queued"] = "queued"
    created_at: datetime


class ArtifactView(ApiModel):
    id: UUID
    run_id: UUID
    path: str
    size_bytes: int
    checksum: str = Field(description="sha256:<hex>")
    content_type: str
    url: str = Field(description="Download URL (GET, same bearer token)")
    created_at: datetime


class AttemptView(ApiModel):
    """One attempt of a run, as the scheduler decided it."""

    attempt: int = Field(ge=1)
    status: RunStatus
    executor_kind: str | None = None
    executor_id: str | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    failure_reason: FailureReason | None = None
    error: str | None = None


class RunView(ApiModel):
    """The body of ``GET /api/v1/runs/{run_id}``."""

    run_id: UUID
    job_type: str
    status: RunStatus
    created_by: str
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempt: int
    executor_kind: str | None = None
    sandboxed: bool | None = Field(
        default=None,
        description="False when the run executed as a local process without a container",
    )
    image: str | None = Field(default=None, description="The image its latest attempt ran in")
    exit_code: int | None = None
    failure_reason: FailureReason | None = None
    error: str | None = None
    artifacts: list[ArtifactView] = Field(default_factory=list)
    logs_url: str | None = Field(default=None, description="The run's stdout log, once stored")
    lane: str | None = None
    priority: int = DEFAULT_PRIORITY
    session_id: UUID | None = None
    schedule_id: UUID | None = Field(
        default=None, description="The schedule whose tick submitted the run"
    )
    scheduled_for: datetime | None = Field(
        default=None, description="The tick the run was submitted for (a scheduled run only)"
    )
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_seconds: int | None = None
    next_attempt_at: datetime | None = Field(
        default=None, description="When a retry waiting for its backoff may be dispatched"
    )
    queue_reason: QueueReason | None = Field(
        default=None, description="Why the run is still queued; null unless queued"
    )
    queue_position: int | None = Field(
        default=None,
        ge=1,
        description="1-based place among the tenant's queued runs in dispatch order",
    )
    attempts: list[AttemptView] = Field(default_factory=list)


class DeclaredLineage(ApiModel):
    sources: list[str] = Field(description="Canonical entity names the job reads")
    targets: list[str] = Field(description="Canonical entity names the job writes")


class RunJobView(ApiModel):
    """The body of ``GET /api/v1/runs/{run_id}/job``: the job as submitted, read-only.

    Its callbacks are left out: their URLs may carry tokens meant for one receiver."""

    run_id: UUID
    job_type: str
    name: str | None = None
    spec: JobSpec
    code: CodeBundle
    created_by: str
    repo: RepoRef | None = None
    lane: str | None = None
    priority: int = DEFAULT_PRIORITY
    retry: RetryPolicy | None = None
    timeout_seconds: int | None = None
    session_id: UUID | None = None
    lineage: DeclaredLineage = Field(description="What the run's lineage edges are made of")


class RunCounts(ApiModel):
    """The body of ``GET /api/v1/runs/counts``: runs matching the filters, per status."""

    counts: dict[RunStatus, int]
    total: int


class RunPage(ApiModel):
    """One page of ``GET /api/v1/runs``, newest first."""

    items: list[RunView]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


class ProgressData(ApiModel):
    percent: float | None = Field(default=None, ge=0, le=100)
    message: str | None = Field(default=None, max_length=4000)


class LogData(ApiModel):
    stream: Literal["stdout", "stderr"] = "stdout"
    lines: list[Annotated[str, Field(max_length=16_000)]] = Field(min_length=1, max_length=1000)


class ArtifactData(ApiModel):
    path: str = Field(min_length=1, max_length=MAX_PATH_LENGTH)
    url: str | None = Field(default=None, max_length=4096)
    size_bytes: int | None = Field(default=None, ge=0)
    checksum: str | None = Field(default=None, max_length=200)
    content_type: str | None = Field(default=None, max_length=200)


class ProgressEventIn(ApiModel):
    event_type: Literal["progress"]
    timestamp: datetime | None = None
    data: ProgressData


class LogEventIn(ApiModel):
    event_type: Literal["log"]
    timestamp: datetime | None = None
    data: LogData


class ArtifactEventIn(ApiModel):
    event_type: Literal["artifact"]
    timestamp: datetime | None = None
    data: ArtifactData


RunEventIn = Annotated[
    ProgressEventIn | LogEventIn | ArtifactEventIn, Field(discriminator="event_type")
]
"""Body of ``POST /api/v1/runs/{run_id}/events`` (PRD FR-4)."""


class ContinueCallback(ApiModel):
    """Body of ``POST /api/v1/webhooks/continue`` (PRD FR-5)."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # Continue may add fields

    run_id: UUID
    status: str = Field(min_length=1, max_length=64)
    summary: str | None = Field(default=None, max_length=20_000)
    artifacts: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class RunEventView(ApiModel):
    id: int = Field(description="Position in the run's history; the SSE event id")
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]


class RunEventPage(ApiModel):
    items: list[RunEventView]
    next_cursor: str | None = None


class ValidationIssue(BaseModel):
    """One problem found by pre-flight validation.

    Unlike the input models it does not refuse NUL: it may name a field exactly as the
    caller sent it, and JSON can carry ``\\u0000`` back even though Postgres cannot store it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="Machine-readable, e.g. syntax.python, schema.missing")
    message: str
    file: str | None = None
    line: int | None = Field(default=None, ge=1)
    column: int | None = Field(default=None, ge=1)
    field: str | None = Field(default=None, description="The body field, for schema problems")


class ValidationReport(BaseModel):
    """Body of the ``POST /api/v1/jobs/validate`` answer: nothing was executed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    valid: bool
    errors: list[ValidationIssue] = Field(default_factory=list)
    warnings: list[ValidationIssue] = Field(default_factory=list)
    executor_kind: str | None = Field(
        default=None, description="The executor kind the job type is routed to, when known"
    )
    image: str | None = Field(
        default=None, description="The image its attempts would run in (routing matrix)"
    )
