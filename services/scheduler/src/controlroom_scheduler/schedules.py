"""Administration of schedules: the answers to the gateway's requests about them.

Every query names the requester's tenant: another tenant's schedule is not found.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from controlroom_contracts.base import utc_now
from controlroom_contracts.management import Done
from controlroom_contracts.schedules import (
    CreateSchedule,
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    ScheduleList,
    ScheduleView,
    SetSchedulePaused,
)
from controlroom_runtime.rpc import RpcFailure
from controlroom_scheduler import schedules_store
from controlroom_scheduler.clock import Clock, ClockError
from controlroom_scheduler.schedules_store import Schedule

log = logging.getLogger(__name__)


def _not_found(schedule_id: UUID) -> RpcFailure:
    return RpcFailure("not_found", f"schedule {schedule_id} not found")


def first_tick(clock: Clock, now: datetime) -> datetime:
    """The clock's first tick after now; a clock without one is the request's fault."""
    try:
        return clock.first_after(now)
    except ClockError as exc:
        # The gateway checks with the same library first; this guards every other requester.
        raise RpcFailure("invalid", f"cron: {exc}") from None


class ScheduleAdmin:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], autocommit: AsyncEngine) -> None:
        self._sessions = sessions
        self._autocommit = autocommit

    async def create(self, request: CreateSchedule) -> ScheduleView:
        body = request.schedule
        now = utc_now()
        clock = Clock(body.cron, body.interval_seconds, body.timezone)
        new = Schedule(
            schedule_id=uuid4(),
            tenant_id=request.tenant_id,
            template=body.template,
            version=body.version,
            cron=body.cron,
            interval_seconds=body.interval_seconds,
            timezone=body.timezone,
            inputs=dict(body.inputs),
            paused=body.paused,
            next_fire_at=first_tick(clock, now),
            last_fired_at=None,
            last_run_id=None,
            last_error=None,
            created_by=request.created_by,
            created_at=now,
        )
        async with self._autocommit.connect() as connection:
            stored = await schedules_store.insert(connection, new)
        log.info("schedule created", extra=_ids(stored))
        return stored.view()

    async def list(self, request: ListSchedules) -> ScheduleList:
        after = (request.after.created_at, request.after.id) if request.after else None
        async with self._autocommit.connect() as connection:
            found = await schedules_store.list_newest_first(
                connection, request.tenant_id, after=after, limit=request.limit + 1
            )
        return ScheduleList(
            items=[f.view() for f in found[: request.limit]], more=len(found) > request.limit
        )

    async def get(self, request: GetSchedule) -> ScheduleView:
        async with self._autocommit.connect() as connection:
            found = await schedules_store.get(connection, request.tenant_id, request.schedule_id)
        if found is None:
            raise _not_found(request.schedule_id)
        return found.view()

    async def set_paused(self, request: SetSchedulePaused) -> ScheduleView:
        """Pause, or resume; either again changes nothing.

        A resumed schedule waits for its next tick after now: ticks that fell while it was
        paused are not fired (nor collapsed into one)."""
        async with self._sessions() as session, session.begin():
            found = await schedules_store.get(
                session, request.tenant_id, request.schedule_id, lock=True
            )
            if found is None:
                raise _not_found(request.schedule_id)
            if found.paused == request.paused:
                return found.view()
            changed = await schedules_store.set_paused(
                session,
                request.tenant_id,
                request.schedule_id,
                paused=request.paused,
                next_fire_at=(
                    found.next_fire_at if request.paused else first_tick(found.clock, utc_now())
                ),
            )
        assert changed is not None, "the row is locked"
        log.info(
            "schedule paused" if request.paused else "schedule resumed",
            extra=_ids(changed) | {"by": request.changed_by},
        )
        return changed.view()

    async def delete(self, request: DeleteSchedule) -> Done:
        async with self._autocommit.connect() as connection:
            deleted = await schedules_store.delete(
                connection, request.tenant_id, request.schedule_id
            )
        if not deleted:
            raise _not_found(request.schedule_id)
        log.info(
            "schedule deleted",
            extra={
                "schedule_id": str(request.schedule_id),
                "tenant_id": request.tenant_id,
                "by": request.deleted_by,
            },
        )
        return Done(id=request.schedule_id)


def _ids(schedule: Schedule) -> dict[str, str]:
    return {"schedule_id": str(schedule.schedule_id), "tenant_id": schedule.tenant_id}
