"""Admission: queued runs whose slots are free are dispatched, fairly, in one transaction.

A pass counts what is in use, reads the best candidates of every tenant that has room, plans
with ``admission.plan`` (pure), and applies ``Dispatch`` to the chosen runs through the state
machine, staging each one's ``RunDispatched`` and ``DispatchRun``. Passes of every replica take
one Postgres advisory lock in turn, so counting and dispatching never interleave: no cap is
exceeded, and the unique (run, attempt) row means no attempt is dispatched twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from controlroom_contracts.api import JobRequest, RunStatus
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import RunDispatched
from controlroom_runtime.tracing import continuing
from controlroom_runtime.unit_of_work import UnitOfWork
from controlroom_runtime.waiting import first_of
from controlroom_scheduler import admission, machine, queue_store
from controlroom_scheduler.liveness import ExecutorBoard
from controlroom_scheduler.service import Scheduler
from controlroom_scheduler.transitions import Addressed

log = logging.getLogger(__name__)

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class Snapshot:
    """What is in use now, per tenant, lane and executor kind, and what waits."""

    usage: admission.Usage
    queued_by_tenant: dict[str, int]
    queued_by_lane: dict[tuple[str, str], int]


def snapshot(rows: list[queue_store.UsageRow], board: ExecutorBoard, now: datetime) -> Snapshot:
    tenant_active: dict[str, int] = {}
    lane_active: dict[tuple[str, str], int] = {}
    kind_active: dict[str, int] = {}
    queued_by_tenant: dict[str, int] = {}
    queued_by_lane: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.status is RunStatus.queued:
            queued_by_tenant[r.tenant_id] = queued_by_tenant.get(r.tenant_id, 0) + r.n
            key = (r.tenant_id, r.lane)
            queued_by_lane[key] = queued_by_lane.get(key, 0) + r.n
            continue
        tenant_active[r.tenant_id] = tenant_active.get(r.tenant_id, 0) + r.n
        key = (r.tenant_id, r.lane)
        lane_active[key] = lane_active.get(key, 0) + r.n
        kind_active[r.executor_kind] = kind_active.get(r.executor_kind, 0) + r.n
    capacity = board.capacity(now)
    usage = admission.Usage(
        tenant_active=tenant_active,
        lane_active=lane_active,
        kind_free={kind: total - kind_active.get(kind, 0) for kind, total in capacity.items()},
        live_kinds=board.live_kinds(now),
    )
    return Snapshot(usage, queued_by_tenant, queued_by_lane)


@dataclass(frozen=True)
class Pass:
    dispatched: int
    more: bool
    """Runs may be waiting that this pass did not read: the next one starts at once."""


@dataclass(frozen=True)
class Dispatcher:
    scheduler: Scheduler
    board: ExecutorBoard
    unit_of_work: UnitOfWorkFactory

    async def dispatch_pass(self) -> Pass:
        """One admission pass: how many runs it dispatched, and whether more may be waiting."""
        scheduler = self.scheduler
        caps, batch = scheduler.caps, scheduler.settings.dispatch_batch
        async with self.unit_of_work() as uow:
            await queue_store.take_admission_lock(uow.session)
            rows = await queue_store.usage(uow.session)
            # After the count: every decision that freed a slot counted here is older.
            now = utc_now()
            snap = snapshot(rows, self.board, now)
            free = {
                tenant: n
                for tenant in snap.queued_by_tenant
                if (n := caps.tenant(tenant) - snap.usage.tenant_active.get(tenant, 0)) > 0
            }
            # Tenants take turns, so a pass admits about its share of each: reading more of a
            # tenant's queue than that (10,000 rows for 1,000 runs at 10 tenants) was a tenth
            # of a pass. A tenant cut short is read on in the next pass, at once.
            share = -(-batch // max(len(free), 1))
            fetch = {tenant: min(n, share) for tenant, n in free.items()}
            cut_short = any(n > share for n in free.values())
            waiting = await queue_store.candidates(uow.session, fetch, caps.aging_seconds)
            chosen = admission.plan(waiting, snap.usage, caps, now, batch)
            if not chosen:
                return Pass(0, more=False)
            applied = await scheduler.apply(
                uow, [Addressed(c.run_id, c.tenant_id, machine.Dispatch(now)) for c in chosen]
            )
            dispatched = [d for d in applied.decisions if isinstance(d, RunDispatched)]
            for decision in dispatched:
                held = applied.runs[decision.run_id]
                assert held.job is not None, "a queued run keeps its job"
                job = JobRequest.model_validate_json(held.job)
                command = DispatchRun(
                    tenant_id=decision.tenant_id,
                    run_id=decision.run_id,
                    attempt=decision.attempt,
                    executor_kind=decision.executor_kind,
                    job=job,
                    timeout_seconds=held.run.timeout_seconds,
                    # The route's profile as this replica loaded it; None (the executor uses
                    # its own copy of the matrix) if the job type left the file since.
                    execution=scheduler.routes.profile(job.job_type),
                )
                with continuing(held.traceparent):
                    await uow.emit(command, subject=command.dispatch_subject())
        if dispatched:
            log.info("runs dispatched", extra={"count": len(dispatched)})
        return Pass(len(dispatched), more=len(dispatched) >= batch or cut_short)

    async def run(self, stopping: asyncio.Event) -> None:
        """Passes for the life of the service: at once when woken, else every interval."""
        scheduler = self.scheduler
        interval = scheduler.settings.dispatch_interval_seconds
        while not stopping.is_set():
            scheduler.wake.clear()
            try:
                if (await self.dispatch_pass()).more:
                    continue
            except Exception:
                log.warning("admission pass failed", exc_info=True)
            await first_of(scheduler.wake, stopping, timeout=interval)
