"""Answers that are not a resource: problem details, acknowledgements, health.

Each is a named model so that the OpenAPI document names its schema and a generated client
gets a type for it, rather than an anonymous object.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from controlroom_contracts.api import ApiModel, RunStatus


class FieldError(BaseModel):
    """One invalid part of a request."""

    field: str = Field(
        description="Where it is: body.code.files.0.path, query.limit, header.idempotency-key",
        examples=["body.code.files.0.path"],
    )
    message: str
    type: str = Field(
        description="Machine-readable: missing, value_error, json_invalid, too_large, "
        "callback.private, ...",
        examples=["value_error"],
    )


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``): every error the API answers.

    Extension members may appear beside these: ``errors`` on a 422, ``retry_after`` on a 429,
    ``run_status`` on a 409, ``checks`` on a 503 from ``/readyz``.
    """

    # Extension members are part of the format: a client must accept the ones it does not know.
    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI naming the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(ge=100, le=599, description="The HTTP status code")
    detail: str | None = Field(default=None, description="What went wrong this time")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[FieldError] | None = Field(
        default=None, description="With 422: every invalid part of the request, each located"
    )


class Accepted(ApiModel):
    """The request was taken in; what follows from it happens asynchronously."""

    status: Literal["accepted"] = "accepted"


class RunCancelAccepted(ApiModel):
    """Cancellation was requested (or the run was already cancelled)."""

    run_id: UUID
    status: RunStatus = Field(description="The run's status when cancellation was requested")
    cancel: Literal["requested"] = "requested"


class SessionCancelAccepted(ApiModel):
    """Cancellation was requested for the session's unfinished runs."""

    session_id: UUID
    cancel_requested: int = Field(ge=0, description="How many runs were asked to stop")


class Health(BaseModel):
    """``GET /healthz``: the process is up."""

    status: Literal["ok"]
    service: str | None = Field(description="null while the service is starting")


class Readiness(BaseModel):
    """``GET /readyz`` when every dependency is ready (otherwise a 503 problem with checks)."""

    status: Literal["ready"]
    service: str
    checks: dict[str, str] = Field(description='Each dependency and "ok"')
