"""Schedules: admins put a template's job on a clock; the scheduler owns them and fires them.

Each tick submits one run (its view carries ``schedule_id`` and ``scheduled_for``), exactly
once however many scheduler replicas run; ticks missed while no scheduler ran fire once, as
the latest of them, not once each. The scheduler asks this gateway for each tick's job
(``template_job``).

A schedule is refused here, with the field that is wrong, before the scheduler is asked:
a cron expression croniter cannot read (or that never matches a date), a template or a
version the tenant does not have. The schema already refused the rest (both clocks or none,
an interval under a second, an unknown time zone). So bad input never reaches the scheduler,
and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncConnection

from controlroom_contracts.base import utc_now
from controlroom_contracts.management import Done
from controlroom_contracts.schedules import (
    CreateSchedule,
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    ScheduleIn,
    ScheduleList,
    SchedulePage,
    ScheduleView,
    SetSchedulePaused,
    TemplateJob,
    TemplateJobQuery,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import GatewayError, InvalidRequest
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs.limits import check_job
from controlroom_gateway.pagination import keyset_after, keyset_next_by
from controlroom_gateway.runs import sessions
from controlroom_gateway.templates import store as templates_store
from controlroom_runtime.rpc import RpcFailure

SCHEDULER = "scheduler"


def cron_problem(expression: str, timezone: str) -> str | None:
    """croniter's reason for refusing the expression, or None when it has a next tick."""
    try:
        croniter(expression, utc_now().astimezone(ZoneInfo(timezone)), datetime).get_next()
    except (ValueError, TypeError) as exc:  # every croniter error derives from these
        return str(exc)
    return None


def _refused(field: str, message: str) -> InvalidRequest:
    error: dict[str, Any] = {"field": field, "message": message, "type": "value_error"}
    return InvalidRequest(f"{field}: {message}", errors=[error])


async def check_schedule(db: AsyncConnection, tenant_id: str, body: ScheduleIn) -> None:
    if body.cron is not None and (problem := cron_problem(body.cron, body.timezone)):
        raise _refused("body.cron", problem)
    if await templates_store.get(db, tenant_id, body.template, body.version) is None:
        version = f" version {body.version}" if body.version is not None else ""
        raise _refused("body.template", f"no template {body.template!r}{version}")


async def create_schedule(gateway: Gateway, principal: Principal, body: ScheduleIn) -> ScheduleView:
    """Check the schedule here (422 naming the field), then have the scheduler keep it."""
    async with gateway.runtime.autocommit.connect() as db:
        await check_schedule(db, principal.tenant_id, body)
        request = CreateSchedule(
            tenant_id=principal.tenant_id, schedule=body, created_by=principal.subject
        )
        return await gateway.ask(request, ScheduleView, service=SCHEDULER)


async def list_schedules(
    gateway: Gateway, principal: Principal, *, limit: int, cursor: str | None
) -> SchedulePage:
    """The tenant's schedules, newest first, a page at a time."""
    request = ListSchedules(tenant_id=principal.tenant_id, limit=limit, after=keyset_after(cursor))
    found = await gateway.ask(request, ScheduleList, service=SCHEDULER)
    return SchedulePage(
        items=found.items,
        next_cursor=keyset_next_by(
            found.items, found.more, lambda s: (s.created_at, s.schedule_id)
        ),
    )


async def get_schedule(gateway: Gateway, principal: Principal, schedule_id: UUID) -> ScheduleView:
    request = GetSchedule(tenant_id=principal.tenant_id, schedule_id=schedule_id)
    return await gateway.ask(request, ScheduleView, service=SCHEDULER)


async def set_paused(
    gateway: Gateway, principal: Principal, schedule_id: UUID, *, paused: bool
) -> ScheduleView:
    """Pause or resume the schedule; idempotent. Ticks missed while paused do not fire."""
    request = SetSchedulePaused(
        tenant_id=principal.tenant_id,
        schedule_id=schedule_id,
        paused=paused,
        changed_by=principal.subject,
    )
    return await gateway.ask(request, ScheduleView, service=SCHEDULER)


async def delete_schedule(gateway: Gateway, principal: Principal, schedule_id: UUID) -> None:
    """Delete the schedule; the runs it submitted stay."""
    request = DeleteSchedule(
        tenant_id=principal.tenant_id, schedule_id=schedule_id, deleted_by=principal.subject
    )
    await gateway.ask(request, Done, service=SCHEDULER)


async def template_job(gateway: Gateway, query: TemplateJobQuery) -> TemplateJob:
    """The job a schedule's tick submits: the template's, with the schedule's inputs over its
    own, checked as a submission is (limits and callbacks may have changed since it was
    saved). ``RpcFailure``: not_found when the template or version is gone, invalid when the
    job would be refused."""
    async with gateway.runtime.autocommit.connect() as db:
        template = await templates_store.get(db, query.tenant_id, query.name, query.version)
        if template is None:
            version = f" version {query.version}" if query.version is not None else ""
            raise RpcFailure("not_found", f"template {query.name!r}{version} not found")
        job = templates_store.template_job(template.name, template.job, query.inputs)
        try:
            await check_job(job, gateway.limits, gateway.callback_policy)
            if job.session_id is not None:
                await sessions.require_session(db, query.tenant_id, job.session_id)
        except GatewayError as exc:
            raise RpcFailure("invalid", f"template {query.name!r}: {exc.detail}") from None
    return TemplateJob(name=template.name, version=template.version, job=job)
