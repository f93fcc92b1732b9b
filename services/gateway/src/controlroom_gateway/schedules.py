"""Schedules: admins put a template's job on a clock; the scheduler owns them and fires them.

Each tick submits one run (its view carries ``schedule_id`` and ``scheduled_for``), exactly
once however many scheduler replicas run; ticks missed while no scheduler ran fire once, as
the latest of them, not once each.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.management import Done
from controlroom_contracts.schedules import (
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    ScheduleIn,
    ScheduleList,
    SchedulePage,
    ScheduleView,
    SetSchedulePaused,
)
from controlroom_gateway import schedules_service
from controlroom_gateway.auth import Principal
from controlroom_gateway.deps import AskerDep, CurrentAdmin, CurrentPrincipal, RuntimeDep
from controlroom_gateway.errors import PROBLEM
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.pagination import keyset_after, keyset_next_by
from controlroom_gateway.rpc import Asker

router = APIRouter(
    prefix="/api/v1/schedules", tags=["schedules"], route_class=InteroperableJsonRoute
)

SERVICE = schedules_service.SCHEDULER
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
    body: ScheduleIn, principal: CurrentAdmin, runtime: RuntimeDep, ask: AskerDep
) -> ScheduleView:
    async with runtime.autocommit.connect() as connection:
        return await schedules_service.create_schedule(connection, ask, principal, body)


@router.get(
    "",
    response_model=SchedulePage,
    summary="The tenant's schedules, newest first, with cursor pagination",
    responses={401: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def list_schedules(
    principal: CurrentPrincipal,
    ask: AskerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SchedulePage:
    request = ListSchedules(tenant_id=principal.tenant_id, limit=limit, after=keyset_after(cursor))
    found = await ask(request, ScheduleList, service=SERVICE)
    return SchedulePage(
        items=found.items,
        next_cursor=keyset_next_by(
            found.items, found.more, lambda s: (s.created_at, s.schedule_id)
        ),
    )


@router.get(
    "/{schedule_id}",
    response_model=ScheduleView,
    summary="One schedule: its clock, next and last tick, and why the last one did nothing",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def get_schedule(
    schedule_id: UUID, principal: CurrentPrincipal, ask: AskerDep
) -> ScheduleView:
    request = GetSchedule(tenant_id=principal.tenant_id, schedule_id=schedule_id)
    return await ask(request, ScheduleView, service=SERVICE)


async def _set_paused(
    ask: Asker, principal: Principal, schedule_id: UUID, *, paused: bool
) -> ScheduleView:
    request = SetSchedulePaused(
        tenant_id=principal.tenant_id,
        schedule_id=schedule_id,
        paused=paused,
        changed_by=principal.subject,
    )
    return await ask(request, ScheduleView, service=SERVICE)


@router.post(
    "/{schedule_id}/pause",
    response_model=ScheduleView,
    summary="Pause a schedule (admin): no tick fires until it is resumed; idempotent",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def pause_schedule(schedule_id: UUID, principal: CurrentAdmin, ask: AskerDep) -> ScheduleView:
    return await _set_paused(ask, principal, schedule_id, paused=True)


@router.post(
    "/{schedule_id}/resume",
    response_model=ScheduleView,
    summary="Resume a schedule (admin) from its next tick; ticks missed while paused do not "
    "fire; idempotent",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def resume_schedule(
    schedule_id: UUID, principal: CurrentAdmin, ask: AskerDep
) -> ScheduleView:
    return await _set_paused(ask, principal, schedule_id, paused=False)


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a schedule (admin); the runs it submitted stay",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: UNAVAILABLE},
)
async def delete_schedule(schedule_id: UUID, principal: CurrentAdmin, ask: AskerDep) -> Response:
    request = DeleteSchedule(
        tenant_id=principal.tenant_id, schedule_id=schedule_id, deleted_by=principal.subject
    )
    await ask(request, Done, service=SERVICE)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
