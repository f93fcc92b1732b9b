"""Schedules' ticks: every pass submits the template job of each tick that is due, once.

A pass reads the due schedules without locking them, asks the gateway for each one's job
(concurrently, with a short timeout, outside any transaction), then in one short transaction
locks those still due (``SKIP LOCKED``) and, for each, takes the latest tick due (ticks missed
while no scheduler ran collapse into it), stages its ``JobSubmitted`` in the outbox and moves
``next_fire_at`` past now. The scheduler's own intake then accepts that submission like any
other, and the gateway's read model, lineage and the notifier see it too.

Exactly once, across replicas and restarts: a tick's submission commits together with the
move of ``next_fire_at`` past it, so no later pass of any replica finds that tick due; and its
run id is ``uuid5(schedule_id, tick)``, so the same submission staged or published again (a
relay after a crash) is still one run (the runs insert is ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID, uuid5

from sqlalchemy.ext.asyncio import AsyncEngine

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted
from controlroom_contracts.schedules import TemplateJob, TemplateJobQuery
from controlroom_runtime.unit_of_work import UnitOfWork
from controlroom_runtime.waiting import first_of
from controlroom_scheduler import schedules_store
from controlroom_scheduler.clock import ClockError
from controlroom_scheduler.dispatcher import UnitOfWorkFactory
from controlroom_scheduler.schedules_store import Schedule, Ticked
from controlroom_scheduler.template_jobs import Refused, TemplateJobs

log = logging.getLogger(__name__)


def scheduled_run_id(schedule_id: UUID, scheduled_for: datetime) -> UUID:
    """The run of one tick of one schedule: whoever computes it, the same id."""
    return uuid5(schedule_id, scheduled_for.astimezone(UTC).isoformat())


class Ticker:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        autocommit: AsyncEngine,
        template_jobs: TemplateJobs,
        *,
        interval: float,
        batch: int,
    ) -> None:
        self._uow = unit_of_work
        self._autocommit = autocommit
        self._template_jobs = template_jobs
        self._interval = interval
        self._batch = batch

    async def tick_pass(self) -> int:
        """One pass; how many ticks it handled (fired or skipped)."""
        async with self._autocommit.connect() as connection:
            due = await schedules_store.due(connection, utc_now(), self._batch)
        if not due:
            return 0
        answers = await asyncio.gather(*(self._template_jobs(_query(s)) for s in due))
        # No answer (the gateway is away): the tick stays due and is asked for again.
        answered = {s.schedule_id: a for s, a in zip(due, answers, strict=True) if a is not None}
        if not answered:
            return 0
        async with self._uow() as uow:
            now = utc_now()
            locked = await schedules_store.lock_due(uow.session, list(answered), now)
            ticks = [await _tick(uow, s, answered[s.schedule_id], now) for s in locked]
            if ticks:
                await schedules_store.write_ticks(uow.session, ticks)
        return len(ticks)

    async def run(self, stopping: asyncio.Event) -> None:
        """Passes for the life of the service, one every interval; at once after a full one,
        as more may be due."""
        while not stopping.is_set():
            try:
                if await self.tick_pass() >= self._batch:
                    continue
            except Exception:
                log.warning("schedule pass failed", exc_info=True)
            await first_of(stopping, timeout=self._interval)


def _query(schedule: Schedule) -> TemplateJobQuery:
    return TemplateJobQuery(
        tenant_id=schedule.tenant_id,
        name=schedule.template,
        version=schedule.version,
        inputs=schedule.inputs,
    )


async def _tick(
    uow: UnitOfWork, schedule: Schedule, answer: TemplateJob | Refused, now: datetime
) -> Ticked:
    ids = {"schedule_id": str(schedule.schedule_id), "tenant_id": schedule.tenant_id}
    clock = schedule.clock
    try:
        scheduled_for = clock.latest_due(schedule.next_fire_at, now)
        next_fire_at = clock.next_after(scheduled_for, now)
    except ClockError as exc:
        # It was read when the schedule was created; pausing it keeps one bad row from
        # failing every pass.
        log.error("schedule clock unreadable; paused", extra=ids | {"error": str(exc)})
        return Ticked(
            schedule.schedule_id,
            next_fire_at=schedule.next_fire_at,
            error=f"paused: the cron expression can no longer be read: {exc}",
            paused=True,
        )
    tick = scheduled_for.isoformat()
    if isinstance(answer, Refused):
        log.warning("scheduled tick skipped", extra=ids | {"tick": tick, "why": answer.reason})
        return Ticked(
            schedule.schedule_id, next_fire_at, error=f"tick {tick} skipped: {answer.reason}"
        )
    run_id = scheduled_run_id(schedule.schedule_id, scheduled_for)
    await uow.emit(
        JobSubmitted(
            event_id=uuid5(run_id, "job.submitted"),
            occurred_at=now,
            tenant_id=schedule.tenant_id,
            run_id=run_id,
            job=answer.job,
            submitted_by=f"schedule:{schedule.schedule_id}",
            schedule_id=schedule.schedule_id,
            scheduled_for=scheduled_for,
        )
    )
    log.info("schedule fired", extra=ids | {"run_id": str(run_id), "tick": tick})
    return Ticked(schedule.schedule_id, next_fire_at, fired_at=scheduled_for, run_id=run_id)
