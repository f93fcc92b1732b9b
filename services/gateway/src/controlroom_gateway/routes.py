"""The public REST API (PRD section 3)."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Response, status

from controlroom_contracts.api import (
    ContinueCallback,
    JobRequest,
    RunPage,
    RunStatus,
    RunView,
    SubmitResponse,
    ValidationReport,
)
from controlroom_contracts.executors import ExecutorView
from controlroom_contracts.resources import LimitsView
from controlroom_contracts.responses import Accepted, RunCancelAccepted
from controlroom_contracts.rpc import (
    LimitsAnswer,
    LimitsQuery,
    RouteAnswer,
    RouteQuery,
)
from controlroom_gateway import (
    event_size,
    idempotency,
    job_checks,
    queue_info,
    service,
    sessions_service,
    store,
    validation,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.deps import (
    AskerDep,
    CallbackPolicyDep,
    CurrentOperator,
    CurrentPrincipal,
    ExecutorsDep,
    LimitsDep,
    RuntimeDep,
    SettingsDep,
    SubmissionsDep,
)
from controlroom_gateway.errors import PROBLEM, RunNotFound
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.openapi_doc import json_body
from controlroom_gateway.pagination import decode_cursor, encode_cursor
from controlroom_gateway.run_filters import RunFilters
from controlroom_gateway.service import JobLimits
from controlroom_gateway.submissions import SubmissionWriter, submission_message
from controlroom_gateway.syntax_checker import SyntaxCheckerDep
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", route_class=InteroperableJsonRoute)

# Read as JSON and checked here rather than by FastAPI, so that a schema error does not hide
# the job's other problems (see job_checks); documented as a JobRequest all the same.
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
    runtime: RuntimeDep,
    limits: LimitsDep,
    policy: CallbackPolicyDep,
    submissions: SubmissionsDep,
    settings: SettingsDep,
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
    job = await job_checks.acceptable_job(body, limits, policy)
    key = None
    if idempotency_key is not None:
        lifetime = timedelta(hours=settings.idempotency_key_ttl_hours)
        key = idempotency.IdempotencyKey(idempotency_key, lifetime)
    submission = await queue_job(job, principal, runtime, submissions, key)
    if submission.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return SubmitResponse(run_id=submission.run_id, created_at=submission.created_at)


async def accept_job(
    job: JobRequest,
    principal: Principal,
    runtime: ServiceRuntime,
    limits: JobLimits,
    policy: CallbackPolicy,
    submissions: SubmissionWriter,
    idempotency_key: idempotency.IdempotencyKey | None,
) -> service.Submission:
    """Check a job and queue its run (running a template)."""
    job_checks.refuse(await job_checks.job_problems(job, limits, policy))
    return await queue_job(job, principal, runtime, submissions, idempotency_key)


async def queue_job(
    job: JobRequest,
    principal: Principal,
    runtime: ServiceRuntime,
    submissions: SubmissionWriter,
    idempotency_key: idempotency.IdempotencyKey | None,
) -> service.Submission:
    """Queue the run of a checked job."""
    if job.session_id is not None:
        async with runtime.autocommit.connect() as connection:
            await sessions_service.require_session(connection, principal.tenant_id, job.session_id)
    event = service.new_submission(job, principal)
    # Serialised once, here in the request's task (so it carries the request's trace): the
    # size check and the outbox take the same bytes.
    message = submission_message(event)
    event_size.ensure_publishable(message, runtime.broker.connection.max_payload, job=job)
    if idempotency_key is None:
        await submissions.write(event, message)
        submission = service.Submission(event.run_id, event.occurred_at, replayed=False)
    else:
        # Committed is accepted: the answer does not wait for the stream's ack (the relay
        # publishes what this publish misses, so a NATS outage costs clients no time).
        async with unit_of_work(runtime.sessions, runtime.outbox, await_publish=False) as uow:
            submission = await service.submit_with_key(uow, event, message, idempotency_key)
    log.info("job submitted", extra={"run_id": str(submission.run_id), "job_type": job.job_type})
    return submission


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
    body: JobBody,
    _principal: CurrentPrincipal,
    ask: AskerDep,
    policy: CallbackPolicyDep,
    limits: LimitsDep,
    executors: ExecutorsDep,
    syntax: SyntaxCheckerDep,
) -> ValidationReport:
    async def route(job_type: str) -> RouteAnswer:
        return await ask(RouteQuery(job_type=job_type), RouteAnswer, service="scheduler")

    return await validation.validate_job(
        body,
        limits=limits,
        policy=policy,
        syntax=syntax,
        route=route,
        live_kinds=executors.live_kinds,
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunView,
    tags=["runs"],
    summary="A run's status, timestamps, exit code and error",
    responses={401: PROBLEM, 404: PROBLEM | {"description": "No such run for this tenant"}},
)
async def get_run(
    run_id: UUID, principal: CurrentPrincipal, runtime: RuntimeDep, ask: AskerDep
) -> RunView:
    async with runtime.autocommit.connect() as connection:
        view = await store.get_run(connection, run_id, principal.tenant_id)
    if view is None:
        raise RunNotFound(f"run {run_id} not found")
    return (await queue_info.explained([view], principal.tenant_id, ask))[0]


@router.post(
    "/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCancelAccepted,
    tags=["runs"],
    summary="Cancel a run: a queued run at once, a running one by terminating it; idempotent",
    responses={
        401: PROBLEM,
        403: PROBLEM,
        404: PROBLEM,
        409: PROBLEM | {"description": "Finished"},
    },
)
async def cancel_run(
    run_id: UUID, principal: CurrentOperator, runtime: RuntimeDep
) -> RunCancelAccepted:
    async with unit_of_work(runtime.sessions, runtime.outbox, await_publish=False) as uow:
        current = await service.request_cancel(uow, run_id, principal)
    return RunCancelAccepted(run_id=run_id, status=current)


@router.post(
    "/webhooks/continue",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    tags=["webhooks"],
    summary="Intake of Continue callbacks ({run_id, status, summary, artifacts})",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
async def continue_callback(
    body: ContinueCallback, principal: CurrentOperator, runtime: RuntimeDep
) -> Accepted:
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await service.receive_continue_callback(uow, body, principal)
    return Accepted()


@router.get(
    "/runs",
    response_model=RunPage,
    tags=["runs"],
    summary="The tenant's runs, newest first, filtered, with cursor pagination",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def list_runs(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    filtered: RunFilters,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    *,
    ask: AskerDep,
) -> RunPage:
    after = decode_cursor(cursor) if cursor else None
    filters = dataclasses.replace(filtered, status=status)
    async with runtime.sessions() as session:
        items = await store.list_runs(
            session, principal.tenant_id, filters, limit=limit + 1, after=after
        )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].run_id)
    items = await queue_info.explained(items, principal.tenant_id, ask)
    return RunPage(items=items, next_cursor=next_cursor)


@router.get(
    "/limits",
    response_model=LimitsView,
    tags=["runs"],
    summary="The tenant's concurrency caps, per lane, and what uses them now",
    responses={401: PROBLEM, 503: PROBLEM | {"description": "The scheduler did not answer"}},
)
async def get_limits(principal: CurrentPrincipal, ask: AskerDep) -> LimitsView:
    return await ask(LimitsQuery(tenant_id=principal.tenant_id), LimitsAnswer, service="scheduler")


@router.get(
    "/executors",
    response_model=list[ExecutorView],
    tags=["executors"],
    summary="Executors that reported in: id, kind, capacity, running, last heartbeat",
    responses={401: PROBLEM},
)
async def list_executors(
    _principal: CurrentPrincipal, executors: ExecutorsDep
) -> list[ExecutorView]:
    return executors.views()
