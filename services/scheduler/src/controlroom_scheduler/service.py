"""The scheduler's use cases: accept a submission, dispatch it, apply executor reports."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from controlroom_contracts.api import FailureReason, RunStatus
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import (
    CancelRequested,
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunQueued,
    RunStarted,
)
from controlroom_runtime.metrics import Metrics
from controlroom_runtime.unit_of_work import UnitOfWork
from controlroom_scheduler import store

log = logging.getLogger(__name__)

ExecutorReport = RunStarted | RunCompleted | RunFailed | RunCancelled


class Scheduler:
    def __init__(self, routes: Mapping[str, str], default_timeout: int, metrics: Metrics) -> None:
        self._routes = dict(routes)
        self._timeout = default_timeout
        self._metrics = metrics

    def route(self, job_type: str) -> str | None:
        return self._routes.get(job_type)

    async def accept(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        await self.accept_all(uow, [event])

    async def accept_all(self, uow: UnitOfWork, events: Sequence[JobSubmitted]) -> None:
        """Queue submitted runs and dispatch each one's first attempt to its executor kind.

        Set-based: one insert for the whole batch, whose runs are all new (a run id already
        known, or twice in the batch, is accepted once). First cut: no caps or lanes yet, so a
        queued run is dispatched in the same transaction.
        """
        new = [
            store.NewRun(
                run_id=e.run_id,
                tenant_id=e.tenant_id,
                job_type=e.job.job_type,
                executor_kind=(kind := self._routes.get(e.job.job_type)),
                status=RunStatus.dispatched if kind else RunStatus.failed,
                attempt=1 if kind else 0,
            )
            for e in events
        ]
        inserted = await store.insert_runs(uow.session, new)
        for event, run in zip(events, new, strict=True):
            if run.run_id not in inserted:
                log.info("run already known; submission ignored", extra=_ids(event))
                continue
            inserted.discard(run.run_id)
            if run.executor_kind is None:
                await self._fail_unrouted(uow, event)
            else:
                await self._dispatch_first(uow, event, run.executor_kind)

    async def _fail_unrouted(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        job_type = event.job.job_type
        log.warning("no executor routed for job type", extra={"job_type": job_type, **_ids(event)})
        await uow.emit(
            RunFailed(
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                attempt=0,
                failure_reason=FailureReason.no_route,
                error=f"no executor kind is routed for job type {job_type!r}",
                finished_at=utc_now(),
            )
        )

    async def _dispatch_first(self, uow: UnitOfWork, event: JobSubmitted, kind: str) -> None:
        await uow.emit(
            RunQueued(
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                job_type=event.job.job_type,
                executor_kind=kind,
            )
        )
        await uow.emit(
            RunDispatched(
                tenant_id=event.tenant_id, run_id=event.run_id, attempt=1, executor_kind=kind
            )
        )
        command = DispatchRun(
            tenant_id=event.tenant_id,
            run_id=event.run_id,
            attempt=1,
            executor_kind=kind,
            job=event.job,
            timeout_seconds=self._timeout,
        )
        await uow.emit(command, subject=command.dispatch_subject())
        log.info("run dispatched", extra={"executor_kind": kind, "attempt": 1, **_ids(event)})

    async def apply_report(self, uow: UnitOfWork, event: ExecutorReport) -> None:
        """Apply an executor's report if it is a valid transition; otherwise ignore and count it."""
        run = await store.get_run_for_update(uow.session, event.run_id, event.tenant_id)
        if run is None:
            self._ignore(event, "unknown run")
            return
        target = _target_status(event)
        if run.status == target and run.attempt == event.attempt:
            return  # the same fact again (e.g. our own RunFailed echoed back): nothing to do
        if event.attempt != run.attempt:
            await self._ignore_counted(
                uow, event, f"attempt {event.attempt} is not current ({run.attempt})"
            )
            return
        if run.status.is_terminal or target.rank <= run.status.rank:
            await self._ignore_counted(uow, event, f"{run.status.value} -> {target.value}")
            return
        await store.set_status(uow.session, event.run_id, target)
        log.info("run status changed", extra={"from": run.status.value, "to": target.value})

    async def cancel(self, uow: UnitOfWork, event: CancelRequested) -> None:
        """A queued run is cancelled here at once; a dispatched one by its executor's report."""
        run = await store.get_run_for_update(uow.session, event.run_id, event.tenant_id)
        if run is None or run.status is not RunStatus.queued:
            return
        await store.set_status(uow.session, event.run_id, RunStatus.cancelled)
        await uow.emit(
            RunCancelled(
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                attempt=run.attempt,
                reason=f"cancelled by {event.requested_by} while queued",
                finished_at=utc_now(),
            )
        )

    async def _ignore_counted(self, uow: UnitOfWork, event: ExecutorReport, why: str) -> None:
        await store.count_ignored(uow.session, event.run_id)
        self._ignore(event, why)

    def _ignore(self, event: ExecutorReport, why: str) -> None:
        self._metrics.ignored_transitions(event.event_type).inc()
        log.warning(
            "invalid transition ignored", extra={"event_type": event.event_type, "why": why}
        )


def _target_status(event: ExecutorReport) -> RunStatus:
    if isinstance(event, RunStarted):
        return RunStatus.running
    if isinstance(event, RunCompleted):
        return RunStatus.completed
    if isinstance(event, RunFailed):
        return RunStatus.failed
    return RunStatus.cancelled


def _ids(event: JobSubmitted) -> dict[str, str]:
    """Log fields naming the run (a batch is handled under no single run's log context)."""
    return {"run_id": str(event.run_id), "tenant_id": event.tenant_id}
