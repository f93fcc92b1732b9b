"""Subscriber of the executor kind's dispatch work queue."""

from __future__ import annotations

import re

from controlroom_contracts import subjects
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import CancelRequested
from controlroom_executor_docker.service import EXECUTOR_KIND, Executor
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime


def register(runtime: ServiceRuntime, executor: Executor, capacity: int, executor_id: str) -> None:
    subject = subjects.dispatch_subject(EXECUTOR_KIND)
    runtime.consume(
        ConsumerSpec[DispatchRun](
            name="executor-docker",
            stream=subjects.DISPATCH_STREAM,
            subjects=[subject],
            models={subject: DispatchRun},
            handler=executor.handle_dispatch,
            batch_size=1,
            concurrency=capacity,
        )
    )
    # Every replica hears every cancellation: only the one running the run can stop it.
    replica = re.sub(r"[^A-Za-z0-9_-]", "_", executor_id)
    runtime.consume(
        ConsumerSpec[CancelRequested](
            name=f"executor-docker-cancel-{replica}",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.CANCEL_REQUESTED],
            models={subjects.CANCEL_REQUESTED: CancelRequested},
            handler=executor.handle_cancel,
            only_new=True,
        )
    )
