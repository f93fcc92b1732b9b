"""The gateway's subscribers: executor heartbeats, and every run event into the read model."""

from __future__ import annotations

import asyncio

from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.events import (
    ArtifactDeleted,
    ArtifactReported,
    ArtifactStored,
    ContinueCallbackReceived,
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunLog,
    RunProgress,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
)
from controlroom_gateway.executors import ExecutorRegistry
from controlroom_gateway.jobs.submissions import GATEWAY_ORIGIN, ORIGIN_HEADER
from controlroom_gateway.read_model import projection
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.heartbeat import call_the_roll
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import UnitOfWork

MODELS: dict[str, type[Message]] = {
    subjects.JOB_SUBMITTED: JobSubmitted,
    subjects.RUN_QUEUED: RunQueued,
    subjects.RUN_DISPATCHED: RunDispatched,
    subjects.RUN_STARTED: RunStarted,
    subjects.RUN_COMPLETED: RunCompleted,
    subjects.RUN_FAILED: RunFailed,
    subjects.RUN_CANCELLED: RunCancelled,
    subjects.RUN_RETRY_SCHEDULED: RunRetryScheduled,
    subjects.RUN_PROGRESS: RunProgress,
    subjects.RUN_LOG: RunLog,
    subjects.ARTIFACT_REPORTED: ArtifactReported,
    subjects.CONTINUE_CALLBACK_RECEIVED: ContinueCallbackReceived,
    subjects.ARTIFACT_STORED: ArtifactStored,
    subjects.ARTIFACT_DELETED: ArtifactDeleted,
}


async def _project_one(uow: UnitOfWork, event: Message) -> None:
    await projection.project(uow, [event])


def _already_projected(msg: Msg) -> bool:
    """A submission this gateway (any replica) accepted wrote its run row when it committed."""
    return (msg.headers or {}).get(ORIGIN_HEADER) == GATEWAY_ORIGIN


def register_heartbeats(runtime: ServiceRuntime, executors: ExecutorRegistry) -> None:
    """Executors' heartbeats, for ``GET /executors`` and pre-flight validation (API process)."""

    @runtime.broker.subscriber(subjects.EXECUTOR_HEARTBEAT)
    async def on_executor_heartbeat(msg: NatsMessage) -> None:
        executors.record_raw(msg.body)

    async def roll_call(_stopping: asyncio.Event) -> None:
        # Background tasks start once the subscriber above is in place: every executor's
        # answer is heard, and the registry is whole within a round trip instead of an interval.
        await call_the_roll(runtime.broker)

    runtime.background(roll_call)


def register_projection(runtime: ServiceRuntime) -> None:
    """Run events into the read model: in the API process, or in the projector process."""
    # One consumer for all of them keeps a run's events in stream order.
    runtime.consume(
        ConsumerSpec[Message](
            name="gateway-read-model",
            stream=subjects.EVENTS_STREAM,
            subjects=list(MODELS),
            models=MODELS,
            handler=_project_one,
            batch_handler=projection.project,
            skip=_already_projected,
        )
    )
