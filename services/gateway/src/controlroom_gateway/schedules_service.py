"""Schedules: checked here, then owned by the scheduler; and the template jobs it asks for.

A schedule is refused here, with the field that is wrong, before the scheduler is asked:
a cron expression croniter cannot read (or that never matches a date), a template or a
version the tenant does not have. The schema already refused the rest (both clocks or none,
an interval under a second, an unknown time zone). So bad input never reaches the scheduler,
and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncConnection

from controlroom_contracts.base import utc_now
from controlroom_contracts.schedules import (
    CreateSchedule,
    ScheduleIn,
    ScheduleView,
    TemplateJob,
    TemplateJobQuery,
)
from controlroom_gateway import service, sessions_service, templates_store
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import GatewayError, InvalidRequest
from controlroom_gateway.rpc import Asker
from controlroom_gateway.service import JobLimits
from controlroom_runtime.callback_policy import CallbackPolicy
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


async def create_schedule(
    db: AsyncConnection, ask: Asker, principal: Principal, body: ScheduleIn
) -> ScheduleView:
    await check_schedule(db, principal.tenant_id, body)
    request = CreateSchedule(
        tenant_id=principal.tenant_id, schedule=body, created_by=principal.subject
    )
    return await ask(request, ScheduleView, service=SCHEDULER)


async def template_job(
    db: AsyncConnection, query: TemplateJobQuery, limits: JobLimits, policy: CallbackPolicy
) -> TemplateJob:
    """The job a schedule's tick submits: the template's, with the schedule's inputs over its
    own, checked as a submission is (limits and callbacks may have changed since it was
    saved). ``RpcFailure``: not_found when the template or version is gone, invalid when the
    job would be refused."""
    template = await templates_store.get(db, query.tenant_id, query.name, query.version)
    if template is None:
        version = f" version {query.version}" if query.version is not None else ""
        raise RpcFailure("not_found", f"template {query.name!r}{version} not found")
    job = templates_store.template_job(template.name, template.job, query.inputs)
    try:
        await service.check_job(job, limits, policy)
        if job.session_id is not None:
            await sessions_service.require_session(db, query.tenant_id, job.session_id)
    except GatewayError as exc:
        raise RpcFailure("invalid", f"template {query.name!r}: {exc.detail}") from None
    return TemplateJob(name=template.name, version=template.version, job=job)
