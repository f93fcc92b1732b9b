"""Subscribers: decode, call the scheduler, return. Ack policy lives in the runtime consumer."""

from __future__ import annotations

from controlroom_contracts import subjects
from controlroom_contracts.events import (
    CancelRequested,
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
)
from controlroom_contracts.rpc import RouteAnswer, RouteQuery
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_scheduler.service import ExecutorReport, Scheduler


def register(runtime: ServiceRuntime, scheduler: Scheduler) -> None:
    async def route(query: RouteQuery) -> RouteAnswer:
        return RouteAnswer(job_type=query.job_type, executor_kind=scheduler.route(query.job_type))

    answer(runtime, RouteQuery, route, queue="scheduler")

    runtime.consume(
        ConsumerSpec[JobSubmitted](
            name="scheduler-submissions",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.JOB_SUBMITTED],
            models={subjects.JOB_SUBMITTED: JobSubmitted},
            handler=scheduler.accept,
            batch_handler=scheduler.accept_all,
        )
    )
    reports: dict[str, type[ExecutorReport]] = {
        subjects.RUN_STARTED: RunStarted,
        subjects.RUN_COMPLETED: RunCompleted,
        subjects.RUN_FAILED: RunFailed,
        subjects.RUN_CANCELLED: RunCancelled,
    }
    runtime.consume(
        ConsumerSpec[ExecutorReport](
            name="scheduler-reports",
            stream=subjects.EVENTS_STREAM,
            subjects=list(reports),
            models=reports,
            handler=scheduler.apply_report,
        )
    )
    runtime.consume(
        ConsumerSpec[CancelRequested](
            name="scheduler-cancellations",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.CANCEL_REQUESTED],
            models={subjects.CANCEL_REQUESTED: CancelRequested},
            handler=scheduler.cancel,
        )
    )
