"""The scheduler's use cases: accept submissions, apply executors' reports and cancellations.

Admission (``dispatcher``) and the clock's inputs (``sweeper``) run beside these; all of them
change runs only through ``transitions.apply``, that is through the state machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from controlroom_contracts.api import FailureReason, RunStatus
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import (
    AttemptCancelled,
    AttemptCompleted,
    AttemptFailed,
    AttemptReport,
    AttemptStarted,
    CancelRequested,
    JobSubmitted,
    RunFailed,
    RunQueued,
)
from controlroom_runtime import message_headers
from controlroom_runtime.metrics import Metrics
from controlroom_runtime.tracing import continuing, current_traceparent
from controlroom_runtime.unit_of_work import UnitOfWork
from controlroom_scheduler import machine, queue_store, store
from controlroom_scheduler.admission import Caps
from controlroom_scheduler.retries import rule_of
from controlroom_scheduler.routing import Routes
from controlroom_scheduler.settings import SchedulerSettings
from controlroom_scheduler.transitions import Addressed, Applied, apply

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: SchedulerSettings, routes: Routes, metrics: Metrics) -> None:
        self.settings = settings
        self.routes = routes
        self.metrics = metrics
        self.timing = machine.Timing(
            deadline_grace=timedelta(seconds=settings.deadline_grace_seconds),
            cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
        )
        self.caps = Caps(
            tenant_default=settings.tenant_max_concurrent,
            tenant_overrides=settings.tenant_limits,
            lane_weights={name: lane.weight for name, lane in settings.lanes.items()},
            lane_caps={name: lane.max_concurrent_runs for name, lane in settings.lanes.items()},
            aging_seconds=settings.aging_seconds,
        )
        self.wake = asyncio.Event()
        """Set when an admission pass may find work (a run queued, a slot freed)."""

    def _wake_after_commit(self, uow: UnitOfWork) -> None:
        async def wake() -> None:
            self.wake.set()

        uow.on_commit(wake)

    # -- intake ---------------------------------------------------------------------------
    async def accept(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        await self.accept_all(uow, [event])

    async def accept_all(self, uow: UnitOfWork, events: Sequence[JobSubmitted]) -> None:
        """Queue submitted runs under their resolved policy (set-based: one insert).

        A run id already known, or twice in the batch, is accepted once. A job type no
        executor kind is routed to fails at once (``no_route``)."""
        now = utc_now()
        new = [self._new_run(e, now) for e in events]
        inserted = await store.insert_runs(uow.session, new)
        queued: list[UUID] = []
        for event, run in zip(events, new, strict=True):
            if run.run_id not in inserted:
                log.info("run already known; submission ignored", extra=_ids(event))
                continue
            inserted.discard(run.run_id)
            if run.executor_kind is None:
                with continuing(run.traceparent):
                    await self._fail_unrouted(uow, event)
                continue
            queued.append(run.run_id)
            with continuing(run.traceparent):
                await uow.emit(self._queued(run, now))
        if queued:
            await self._cancel_early(uow, queued)
            self._wake_after_commit(uow)

    async def _cancel_early(self, uow: UnitOfWork, accepted: list[UUID]) -> None:
        """Cancellations that arrived before these runs' submissions end them now."""
        early = await queue_store.take_cancellations(uow.session, accepted)
        if early:
            await self.apply(
                uow,
                [
                    Addressed(run_id, tenant, machine.CancelRequested(by, at))
                    for run_id, tenant, by, at in early
                ],
            )

    @staticmethod
    def _queued(run: store.NewRun, now: datetime) -> RunQueued:
        assert run.executor_kind is not None
        return RunQueued(
            event_id=machine.decision_id(run.run_id, 1),
            sequence=1,
            tenant_id=run.tenant_id,
            run_id=run.run_id,
            job_type=run.job_type,
            executor_kind=run.executor_kind,
            lane=run.lane,
            priority=run.priority,
            max_attempts=run.retry.max_attempts,
            timeout_seconds=run.timeout_seconds,
            session_id=run.session_id,
            occurred_at=now,
        )

    def _new_run(self, event: JobSubmitted, now: datetime) -> store.NewRun:
        job = event.job
        settings = self.settings
        route = self.routes.route(job.job_type)
        kind = None if route is None else route.executor
        lane = job.lane or settings.default_lane
        if lane not in settings.lanes:
            # The gateway refuses unknown lanes; a producer on NATS may not have.
            log.warning(
                "unknown lane; the default lane is used", extra={"lane": lane, **_ids(event)}
            )
            lane = settings.default_lane
        # The job's own timeout and retry policy, else its route's, else the deployment's.
        route_timeout = None if route is None else route.timeout_seconds
        timeout = min(
            job.timeout_seconds or route_timeout or settings.default_timeout_seconds,
            settings.max_timeout_seconds,
        )
        retry = rule_of(job.retry or (None if route is None else route.retry))
        return store.NewRun(
            run_id=event.run_id,
            tenant_id=event.tenant_id,
            job_type=job.job_type,
            executor_kind=kind,
            status=RunStatus.queued if kind else RunStatus.failed,
            attempt=1 if kind else 0,
            sequence=1,
            lane=lane,
            priority=job.priority,
            session_id=job.session_id,
            job=job.model_dump_json(),
            timeout_seconds=timeout,
            retry=retry,
            eligible_at=now,
            # The submission's own trace (a batch is handled under a span of its own).
            traceparent=message_headers.of(event.event_id).get("traceparent")
            or current_traceparent(),
        )

    async def _fail_unrouted(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        job_type = event.job.job_type
        log.warning("no executor routed for job type", extra={"job_type": job_type, **_ids(event)})
        await uow.emit(
            RunFailed(
                event_id=machine.decision_id(event.run_id, 1),
                sequence=1,
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                attempt=0,
                failure_reason=FailureReason.no_route,
                error=f"no executor kind is routed for job type {job_type!r}",
                finished_at=utc_now(),
            )
        )

    # -- reports and cancellations ---------------------------------------------------------
    async def apply(self, uow: UnitOfWork, inputs: Sequence[Addressed]) -> Applied:
        applied = await apply(uow, inputs, self.timing, self.metrics)
        if applied.frees_a_slot:
            self._wake_after_commit(uow)
        return applied

    async def apply_input(self, uow: UnitOfWork, event: AttemptReport | CancelRequested) -> None:
        await self.apply_inputs(uow, [event])

    async def apply_inputs(
        self, uow: UnitOfWork, events: Sequence[AttemptReport | CancelRequested]
    ) -> None:
        """Executors' reports and cancellation requests, in stream order, as inputs to the
        machine; what is not a valid transition is ignored (and counted).

        A cancellation of a queued run ends it at once; of an active one, when its executor
        confirms, or after the grace period (the sweeper's tick)."""
        now = utc_now()
        await self.apply(uow, [Addressed(e.run_id, e.tenant_id, _as_input(e, now)) for e in events])


def _as_input(report: AttemptReport | CancelRequested, now: datetime) -> machine.Input:
    if isinstance(report, CancelRequested):
        return machine.CancelRequested(report.requested_by, now)
    if isinstance(report, AttemptStarted):
        return machine.Started(
            report.attempt, report.executor_id, report.sandboxed, now, image=report.image
        )
    if isinstance(report, AttemptCompleted):
        return machine.Completed(
            report.attempt, report.exit_code, report.summary, report.finished_at, now
        )
    if isinstance(report, AttemptFailed):
        return machine.Failed(
            report.attempt,
            report.failure_reason,
            report.exit_code,
            report.error,
            report.finished_at,
            now,
        )
    assert isinstance(report, AttemptCancelled)
    return machine.Cancelled(report.attempt, report.reason, report.finished_at, now)


def _ids(event: JobSubmitted) -> dict[str, str]:
    """Log fields naming the run (a batch is handled under no single run's log context)."""
    return {"run_id": str(event.run_id), "tenant_id": event.tenant_id}
