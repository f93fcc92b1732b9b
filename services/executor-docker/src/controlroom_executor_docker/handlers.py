"""Subscriber of the executor kind's dispatch work queue."""

from __future__ import annotations

from controlroom_contracts import subjects
from controlroom_contracts.commands import DispatchRun
from controlroom_executor_docker.service import EXECUTOR_KIND, Executor
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime


def register(runtime: ServiceRuntime, executor: Executor, capacity: int) -> None:
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
