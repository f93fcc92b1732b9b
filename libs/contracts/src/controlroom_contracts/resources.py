"""REST bodies of the resources around runs: job templates, sessions, the tenant's limits, the
routing matrix."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from controlroom_contracts.api import ApiModel, JobRequest, RetryPolicy, RunStatus
from controlroom_contracts.routing import Network, RoutingMatrix

TEMPLATE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""A template's name, in a body and in a URL path."""

TemplateName = Annotated[
    str,
    Field(
        pattern=TEMPLATE_NAME_PATTERN,
        description="Lower-case letters, digits, '_', '.', '-'; at most 64 characters",
        examples=["nightly-orders-etl"],
    ),
]


class TemplateIn(ApiModel):
    """The body of ``POST /api/v1/templates``: a new version of the named template."""

    name: TemplateName
    description: str = Field(default="", max_length=2_000)
    job: JobRequest


class TemplateView(ApiModel):
    name: str
    version: int = Field(ge=1)
    description: str
    job: JobRequest
    created_by: str
    created_at: datetime


class TemplatePage(ApiModel):
    """One page of ``GET /api/v1/templates``: the latest version of each, by name."""

    items: list[TemplateView]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


class TemplateRunIn(ApiModel):
    """The body of ``POST /api/v1/templates/{name}/run``."""

    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Default: the latest version"
    )
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Merged over the template's declared inputs"
    )
    created_by: str | None = Field(
        default=None, min_length=1, max_length=256, description="Default: the template's"
    )


class SessionIn(ApiModel):
    """The body of ``POST /api/v1/sessions``: a named group for the runs submitted into it."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)


class SessionView(ApiModel):
    """A session with what its runs add up to (the body of ``GET /api/v1/sessions/{id}``)."""

    session_id: UUID
    name: str
    description: str | None = None
    status: Literal["active", "completed", "failed"] = Field(
        description="active while a run is not finished (or there is none yet); completed when "
        "every run completed; failed otherwise"
    )
    counts: dict[RunStatus, int] = Field(description="Runs per status; every status is present")
    created_at: datetime
    created_by: str


class SessionPage(ApiModel):
    """One page of ``GET /api/v1/sessions``, newest first."""

    items: list[SessionView]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


class LaneUsage(ApiModel):
    max_concurrent_runs: int | None = Field(description="null: no cap of its own")
    running: int = Field(ge=0, description="Dispatched or running")
    queued: int = Field(ge=0)


class LimitsView(ApiModel):
    """The body of ``GET /api/v1/limits``: the tenant's caps and what uses them now."""

    max_concurrent_runs: int
    running: int = Field(ge=0, description="Dispatched or running")
    queued: int = Field(ge=0)
    lanes: dict[str, LaneUsage]


class RouteView(ApiModel):
    """One job type's row of the routing matrix, sizes in bytes."""

    executor: str = Field(description="Executor kind, e.g. docker, k8s")
    image: str
    commands: dict[str, list[str]] = Field(
        description='Entrypoint extension -> the command before the entrypoint, e.g. ".py": '
        '["python3", "-I"]'
    )
    memory_bytes: int
    cpus: float
    pids: int = Field(description="Most processes at once")
    tmp_bytes: int = Field(description="Size of /tmp")
    workspace_bytes: int = Field(description="Most the job may write to /workspace")
    network: Network = Field(description="none: no network at all; egress: outbound only")
    timeout_seconds: int | None = Field(
        description="Per attempt when the job gives none; null: the deployment's default"
    )
    retry: RetryPolicy | None = Field(
        description="When the job gives none; null: the deployment's default"
    )


class RoutingView(ApiModel):
    """The body of ``GET /api/v1/routing``: the routing matrix as the gateway loaded it, with
    ``CONTROLROOM_ROUTING_PROFILE`` and ``CONTROLROOM_ROUTES`` applied."""

    job_types: dict[str, RouteView]

    @classmethod
    def of(cls, matrix: RoutingMatrix) -> RoutingView:
        return cls(
            job_types={
                name: RouteView.model_validate(route.model_dump())
                for name, route in matrix.job_types.items()
            }
        )
