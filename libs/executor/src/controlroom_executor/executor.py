"""Executor use cases: claim a dispatched attempt, cancel, recover at start, heartbeat.

A run is not a message. The dispatch is acknowledged as soon as the claim (the attempt's row,
holding the dispatch) is committed; the attempt is then supervised from that row. A restarted
executor (same identity) finds the containers or Jobs it started by their labels and supervises
them again; an attempt claimed but never started is started; only an attempt whose container
or Job is gone is reported ``lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import AttemptCancelled, AttemptFailed, CancelRequested
from controlroom_contracts.executors import ExecutorHeartbeat, HeldAttempt
from controlroom_executor.backend import AttemptKey, RunningAttempt
from controlroom_executor.supervision import ExecutorParts, supervise
from controlroom_runtime.logs import log_context
from controlroom_runtime.room import Room, keep_place
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

RECENT_CANCELLATIONS = 10_000


class Executor:
    def __init__(self, parts: ExecutorParts, room: Room) -> None:
        self.parts = parts
        self.room = room
        self.held: dict[AttemptKey, HeldAttempt] = {}
        """Attempts claimed and not yet reported finished: what heartbeats list. An attempt
        stays here until its final report is committed, so the scheduler never takes it for
        lost while its outcome is on its way."""
        self._cancels: dict[AttemptKey, asyncio.Event] = {}
        self._cancelled_runs: OrderedDict[UUID, None] = OrderedDict()
        """Runs whose cancellation this replica heard lately: one heard between a claim's
        check of the table and the start of its supervision still stops it."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._started_at = utc_now()

    # -- consumers --------------------------------------------------------------------------
    async def handle_dispatch(self, uow: UnitOfWork, command: DispatchRun) -> None:
        """Claim the attempt; once the claim commits, the dispatch is acked and it runs."""
        store = self.parts.store
        if not await store.claim(uow.session, command, self.parts.executor_id):
            log.info("attempt already claimed or stale; dispatch ignored")
            return
        key = AttemptKey(command.run_id, command.attempt)
        if await store.is_cancelled(uow.session, command.run_id):
            # Cancelled while it waited in the queue: report it, never start it.
            await store.finish(uow.session, key, "cancelled", None)
            await uow.emit(
                AttemptCancelled(
                    tenant_id=command.tenant_id,
                    run_id=command.run_id,
                    attempt=command.attempt,
                    reason="cancelled before it started",
                    finished_at=utc_now(),
                )
            )
            return

        async def start_after_commit() -> None:
            self._start(command, keep_place())

        uow.on_commit(start_after_commit)

    async def handle_cancel(self, uow: UnitOfWork, event: CancelRequested) -> None:
        """Remember the cancellation (for dispatches still queued); stop the run if it is ours."""
        await self.parts.store.note_cancellation(uow.session, event.run_id, event.tenant_id)
        self._cancelled_runs[event.run_id] = None
        while len(self._cancelled_runs) > RECENT_CANCELLATIONS:
            self._cancelled_runs.popitem(last=False)
        for key, cancel in self._cancels.items():
            if key.run_id == event.run_id:
                log.info("attempt cancellation signalled", extra={"attempt": key.attempt})
                cancel.set()

    # -- supervision ------------------------------------------------------------------------
    def _start(
        self,
        command: DispatchRun,
        free_place: Callable[[], None],
        adopted: RunningAttempt | None = None,
        launched_at: datetime | None = None,
    ) -> None:
        key = AttemptKey(command.run_id, command.attempt)
        self.held[key] = HeldAttempt(
            tenant_id=command.tenant_id, run_id=command.run_id, attempt=command.attempt
        )
        cancel = self._cancels.setdefault(key, asyncio.Event())
        if command.run_id in self._cancelled_runs:
            cancel.set()

        async def run() -> None:
            with log_context(run_id=command.run_id, tenant_id=command.tenant_id):
                try:
                    await supervise(self.parts, command, cancel, adopted, launched_at)
                finally:
                    self.held.pop(key, None)
                    self._cancels.pop(key, None)
                    free_place()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def recover(self) -> None:
        """At start: resume every attempt this executor claimed and has not reported."""
        parts = self.parts
        async with parts.sessions() as session:
            unfinished = await parts.store.unfinished(session, parts.executor_id)
        found = await parts.backend.adopt(parts.executor_id)
        lost: list[tuple[AttemptKey, str]] = []
        for row in unfinished:
            adopted = found.pop(row.key, None)
            if row.dispatch is None:
                lost.append((row.key, row.tenant_id))  # claimed by an older executor version
            elif adopted is not None:
                self.room.take()
                self._start(row.dispatch, self.room.free, adopted, row.launched_at)
            elif row.status == "claimed":
                self.room.take()  # claimed, never started: it is still ours to run
                self._start(row.dispatch, self.room.free)
            else:
                lost.append((row.key, row.tenant_id))
        for leftover in found.values():  # its report is out already: only tidying is left
            with contextlib.suppress(Exception):
                await leftover.remove()
        if lost:
            await self._report_lost(lost)
        log.info(
            "executor recovered its attempts",
            extra={"resumed": len(self.held), "lost": len(lost), "backend": parts.backend.name},
        )

    async def _report_lost(self, lost: list[tuple[AttemptKey, str]]) -> None:
        async with unit_of_work(self.parts.sessions, self.parts.outbox) as uow:
            for key, tenant_id in lost:
                if await self.parts.store.finish(uow.session, key, "failed", None):
                    await uow.emit(
                        AttemptFailed(
                            tenant_id=tenant_id,
                            run_id=key.run_id,
                            attempt=key.attempt,
                            failure_reason=FailureReason.lost,
                            error="its container or process was gone when the executor restarted",
                            finished_at=utc_now(),
                        )
                    )

    async def stop(self) -> None:
        """At service stop: supervision ends; containers run on and are re-adopted later."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    def heartbeat(self) -> ExecutorHeartbeat:
        return ExecutorHeartbeat(
            executor_id=self.parts.executor_id,
            kind=self.parts.kind,
            capacity=self.room.size,
            running=len(self.held),
            attempts=list(self.held.values()),
            ready=True,
            started_at=self._started_at,
        )
