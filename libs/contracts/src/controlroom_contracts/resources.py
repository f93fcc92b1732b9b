"""REST bodies of the resources around runs: job templates, sessions, the tenant's limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from controlroom_contracts.api import ApiModel, JobRequest, RunStatus

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
