"""Subscribers: decode, call the scheduler, return. Ack policy lives in the runtime consumer."""

from __future__ import annotations

import asyncio
import contextlib

from faststream.nats.annotations import NatsMessage
from nats.js.errors import NotFoundError

from controlroom_contracts import subjects
from controlroom_contracts.events import (
    AttemptCancelled,
    AttemptCompleted,
    AttemptFailed,
    AttemptReport,
    AttemptStarted,
    CancelRequested,
    JobSubmitted,
)
from controlroom_contracts.resources import LimitsView
from controlroom_contracts.rpc import LimitsQuery, QueueAnswer, QueueQuery, RouteAnswer, RouteQuery
from controlroom_contracts.schedules import (
    CreateSchedule,
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    SetSchedulePaused,
)
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.heartbeat import call_the_roll
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_scheduler import queries
from controlroom_scheduler.liveness import ExecutorBoard
from controlroom_scheduler.schedules import ScheduleAdmin
from controlroom_scheduler.service import Scheduler

RETIRED_CONSUMERS = ("scheduler-reports", "scheduler-cancellations")
INPUT_ACK_WAIT_SECONDS = 10.0
"""A batch takes milliseconds; what a scheduler that died was holding is redelivered to a
replica (or to it, restarted) after this, instead of after the default minute."""


def register(runtime: ServiceRuntime, scheduler: Scheduler, board: ExecutorBoard) -> None:
    async def route(query: RouteQuery) -> RouteAnswer:
        route = scheduler.routes.route(query.job_type)
        return RouteAnswer(
            job_type=query.job_type,
            executor_kind=None if route is None else route.executor,
            image=None if route is None else route.image,
        )

    async def queue(query: QueueQuery) -> QueueAnswer:
        async with runtime.autocommit.connect() as connection:
            return await queries.queue_entries(connection, scheduler, board, query)

    async def limits(query: LimitsQuery) -> LimitsView:
        async with runtime.autocommit.connect() as connection:
            return await queries.limits(connection, scheduler, board, query.tenant_id)

    answer(runtime, RouteQuery, route, queue="scheduler")
    answer(runtime, QueueQuery, queue, queue="scheduler")
    answer(runtime, LimitsQuery, limits, queue="scheduler")

    @runtime.broker.subscriber(subjects.EXECUTOR_HEARTBEAT)
    async def on_executor_heartbeat(msg: NatsMessage) -> None:
        board.record_raw(msg.body)
        scheduler.wake.set()  # capacity may have changed

    async def roll_call(_stopping: asyncio.Event) -> None:
        # Once subscribed: every executor answers now, so capacity is known within a round trip.
        await call_the_roll(runtime.broker)

    async def retire_old_consumers(_stopping: asyncio.Event) -> None:
        # Their work moved to scheduler-run-inputs; left in place, they would count every
        # event of their subjects as waiting forever.
        for name in RETIRED_CONSUMERS:
            with contextlib.suppress(NotFoundError):
                await runtime.jetstream.delete_consumer(subjects.EVENTS_STREAM, name)

    runtime.background(roll_call)
    runtime.background(retire_old_consumers)

    runtime.consume(
        ConsumerSpec[JobSubmitted](
            name="scheduler-submissions",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.JOB_SUBMITTED],
            models={subjects.JOB_SUBMITTED: JobSubmitted},
            handler=scheduler.accept,
            batch_handler=scheduler.accept_all,
            ack_wait_seconds=INPUT_ACK_WAIT_SECONDS,
        )
    )
    # Reports and cancellations in one consumer: applied in the order the stream holds them,
    # so a cancellation published before a failure report is seen before it.
    inputs: dict[str, type[AttemptReport | CancelRequested]] = {
        subjects.ATTEMPT_STARTED: AttemptStarted,
        subjects.ATTEMPT_COMPLETED: AttemptCompleted,
        subjects.ATTEMPT_FAILED: AttemptFailed,
        subjects.ATTEMPT_CANCELLED: AttemptCancelled,
        subjects.CANCEL_REQUESTED: CancelRequested,
    }
    runtime.consume(
        ConsumerSpec[AttemptReport | CancelRequested](
            name="scheduler-run-inputs",
            stream=subjects.EVENTS_STREAM,
            subjects=list(inputs),
            models=inputs,
            handler=scheduler.apply_input,
            batch_handler=scheduler.apply_inputs,
            ack_wait_seconds=INPUT_ACK_WAIT_SECONDS,
        )
    )


def register_schedules(runtime: ServiceRuntime, admin: ScheduleAdmin) -> None:
    """The gateway's administration of schedules (request-reply; replicas share the work)."""
    answer(runtime, CreateSchedule, admin.create, queue="scheduler")
    answer(runtime, ListSchedules, admin.list, queue="scheduler")
    answer(runtime, GetSchedule, admin.get, queue="scheduler")
    answer(runtime, SetSchedulePaused, admin.set_paused, queue="scheduler")
    answer(runtime, DeleteSchedule, admin.delete, queue="scheduler")
