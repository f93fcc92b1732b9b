"""Jobs: submit one (its run is queued), or validate one before it is submitted."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response, status

from controlroom_contracts.api import JobRequest, SubmitResponse, ValidationReport
from controlroom_gateway.api.deps import CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.openapi_doc import json_body
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.jobs import submit, validate

router = APIRouter(prefix="/api/v1", route_class=InteroperableJsonRoute)

# Read as JSON and checked by the use case rather than by FastAPI, so that a schema error does
# not hide the job's other problems (see job_checks); documented as a JobRequest all the same.
JobBody = Annotated[Any, Body()]


@router.post(
    "/jobs/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitResponse,
    tags=["jobs"],
    summary="Submit a job; its run is queued",
    openapi_extra=json_body(JobRequest, "The job"),
    responses={
        401: PROBLEM | {"description": "Missing or invalid token"},
        200: {
            "model": SubmitResponse,
            "description": "Replay of an earlier submission with the same Idempotency-Key",
        },
        403: PROBLEM | {"description": "Role below operator"},
        404: PROBLEM | {"description": "`session_id` names no session of this tenant"},
        409: PROBLEM | {"description": "Idempotency-Key reused with a different body"},
        413: PROBLEM
        | {
            "description": "Body too large, or the run's event would be larger than the "
            "message broker takes (`parts` names the largest parts of the job)"
        },
        422: PROBLEM | {"description": "Invalid job; `errors` names every problem"},
    },
)
async def submit_job(
    body: JobBody,
    principal: CurrentOperator,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Same key + same body within the key's lifetime (24 h unless "
            "configured otherwise) returns the original run (200); after it, a new run",
        ),
    ] = None,
) -> SubmitResponse:
    submission = await submit.submit_job(gateway, principal, body, idempotency_key=idempotency_key)
    if submission.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return SubmitResponse(run_id=submission.run_id, created_at=submission.created_at)


@router.post(
    "/jobs/validate",
    response_model=ValidationReport,
    tags=["jobs"],
    summary="Pre-flight: schema, syntax of every file, limits, routing, callbacks; runs nothing",
    description="The report lists every problem found, and answers 200 whether the job is "
    "valid or not: even a body that is not a JobRequest gets its other parts checked.",
    openapi_extra=json_body(JobRequest, "A job, as for /jobs/run"),
    responses={401: PROBLEM, 413: PROBLEM, 422: PROBLEM | {"description": "Body is not JSON"}},
)
async def validate_job(
    body: JobBody, _principal: CurrentPrincipal, gateway: GatewayDep
) -> ValidationReport:
    return await validate.validate_job(gateway, body)
