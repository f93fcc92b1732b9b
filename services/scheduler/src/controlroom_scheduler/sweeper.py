"""The clock's inputs to the machine: deadlines passed, cancellations unconfirmed, executors
gone silent or no longer holding an attempt.

Each pass reads the active runs (no write unless something is due), decides in memory which
inputs are due, and applies them through the machine in one transaction. Replicas may sweep at
once: rows are locked, and the machine ignores what another replica already decided.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from controlroom_contracts.api import RunStatus
from controlroom_contracts.base import utc_now
from controlroom_runtime.waiting import first_of
from controlroom_scheduler import machine, queue_store
from controlroom_scheduler.dispatcher import UnitOfWorkFactory
from controlroom_scheduler.liveness import ExecutorBoard
from controlroom_scheduler.service import Scheduler
from controlroom_scheduler.transitions import Addressed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweeper:
    scheduler: Scheduler
    board: ExecutorBoard
    unit_of_work: UnitOfWorkFactory

    async def sweep_pass(self) -> int:
        """One pass; how many inputs were due."""
        timing = self.scheduler.timing
        async with self.unit_of_work() as uow:
            now = utc_now()
            due: list[Addressed] = []
            grace = timing.cancel_grace.total_seconds()
            for a in await queue_store.active_attempts(uow.session, now, grace):
                cancelling = a.cancel_requested_at
                if (a.deadline is not None and now >= a.deadline) or (
                    cancelling is not None and now >= cancelling + timing.cancel_grace
                ):
                    due.append(Addressed(a.run_id, a.tenant_id, machine.Tick(now)))
                elif (
                    a.status is RunStatus.running
                    and a.executor_id is not None
                    and a.started_at is not None
                    and (
                        why := self.board.lost(
                            a.executor_id, a.run_id, a.attempt, a.started_at, now
                        )
                    )
                ):
                    log.warning(
                        "attempt lost",
                        extra={"run_id": str(a.run_id), "attempt": a.attempt, "why": why},
                    )
                    due.append(Addressed(a.run_id, a.tenant_id, machine.Lost(a.attempt, why, now)))
            if due:
                await self.scheduler.apply(uow, due)
        return len(due)

    async def run(self, stopping: asyncio.Event) -> None:
        interval = self.scheduler.settings.sweep_interval_seconds
        while not stopping.is_set():
            try:
                await self.sweep_pass()
            except Exception:
                log.warning("sweep pass failed", exc_info=True)
            await first_of(stopping, timeout=interval)
