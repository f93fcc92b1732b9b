"""Runs: one run, the tenant's runs, cancelling one; Continue callbacks; the tenant's limits
and the executors that reported in."""

from __future__ import annotations

import dataclasses
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from controlroom_contracts.api import ContinueCallback, RunPage, RunStatus, RunView
from controlroom_contracts.executors import ExecutorView
from controlroom_contracts.resources import LimitsView
from controlroom_contracts.responses import Accepted, RunCancelAccepted
from controlroom_gateway.api.deps import CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.api.run_filters import RunFilters
from controlroom_gateway.runs import cancel, events, queries

router = APIRouter(prefix="/api/v1", route_class=InteroperableJsonRoute)


@router.get(
    "/runs/{run_id}",
    response_model=RunView,
    tags=["runs"],
    summary="A run's status, timestamps, exit code and error",
    responses={401: PROBLEM, 404: PROBLEM | {"description": "No such run for this tenant"}},
)
async def get_run(run_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep) -> RunView:
    return await queries.get_run(gateway, principal, run_id)


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
    run_id: UUID, principal: CurrentOperator, gateway: GatewayDep
) -> RunCancelAccepted:
    return await cancel.cancel_run(gateway, principal, run_id)


@router.post(
    "/webhooks/continue",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    tags=["webhooks"],
    summary="Intake of Continue callbacks ({run_id, status, summary, artifacts})",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
async def continue_callback(
    body: ContinueCallback, principal: CurrentOperator, gateway: GatewayDep
) -> Accepted:
    await events.receive_continue_callback(gateway, principal, body)
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
    gateway: GatewayDep,
    filtered: RunFilters,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RunPage:
    filters = dataclasses.replace(filtered, status=status)
    return await queries.list_runs(gateway, principal, filters, limit=limit, cursor=cursor)


@router.get(
    "/limits",
    response_model=LimitsView,
    tags=["runs"],
    summary="The tenant's concurrency caps, per lane, and what uses them now",
    responses={401: PROBLEM, 503: PROBLEM | {"description": "The scheduler did not answer"}},
)
async def get_limits(principal: CurrentPrincipal, gateway: GatewayDep) -> LimitsView:
    return await queries.get_limits(gateway, principal)


@router.get(
    "/executors",
    response_model=list[ExecutorView],
    tags=["executors"],
    summary="Executors that reported in: id, kind, capacity, running, last heartbeat",
    responses={401: PROBLEM},
)
async def list_executors(_principal: CurrentPrincipal, gateway: GatewayDep) -> list[ExecutorView]:
    return gateway.executors.views()
