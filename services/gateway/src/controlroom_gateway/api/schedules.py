"""Schedules: admins put a template's job on a clock; the scheduler owns them and fires them
(``templates.schedules``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.schedules import ScheduleIn, SchedulePage, ScheduleView
from controlroom_gateway.api.deps import CurrentAdmin, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.templates import schedules

router = APIRouter(
    prefix="/api/v1/schedules", tags=["schedules"], route_class=InteroperableJsonRoute
)

UNAVAILABLE = PROBLEM | {"description": "The scheduler did not answer"}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleView,
    summary="Submit a template's job on a cron expression or an interval (admin)",
    responses={
        401: PROBLEM,
        403: PROBLEM,
        422: PROBLEM
        | {
            "description": "Not exactly one of cron and interval_seconds, an invalid cron "
            "expression, interval under 1 s, unknown time zone, or no such template or version; "
            "`errors` names the field"
        },
        503: UNAVAILABLE,
    },
)
async def create_schedule(
    body: ScheduleIn, principal: CurrentAdmin, gateway: GatewayDep
) -> ScheduleView:
    return await schedules.create_schedule(gateway, principal, body)


@router.get(
    "",
    response_model=SchedulePage,
    summary="The tenant's schedules, newest first, with cursor pagination",
    responses={401: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def list_schedules(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SchedulePage:
    return await schedules.list_schedules(gateway, principal, limit=limit, cursor=cursor)


@router.get(
    "/{schedule_id}",
    response_model=ScheduleView,
    summary="One schedule: its clock, next and last tick, and why the last one did nothing",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def get_schedule(
    schedule_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep
) -> ScheduleView:
    return await schedules.get_schedule(gateway, principal, schedule_id)


@router.post(
    "/{schedule_id}/pause",
    response_model=ScheduleView,
    summary="Pause a schedule (admin): no tick fires until it is resumed; idempotent",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def pause_schedule(
    schedule_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> ScheduleView:
    return await schedules.set_paused(gateway, principal, schedule_id, paused=True)


@router.post(
    "/{schedule_id}/resume",
    response_model=ScheduleView,
    summary="Resume a schedule (admin) from its next tick; ticks missed while paused do not "
    "fire; idempotent",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def resume_schedule(
    schedule_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> ScheduleView:
    return await schedules.set_paused(gateway, principal, schedule_id, paused=False)


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a schedule (admin); the runs it submitted stay",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def delete_schedule(
    schedule_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> Response:
    await schedules.delete_schedule(gateway, principal, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
