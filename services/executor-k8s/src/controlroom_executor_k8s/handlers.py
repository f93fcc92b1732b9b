"""Subscriber of the k8s dispatch work queue."""

from __future__ import annotations

from controlroom_contracts import subjects
from controlroom_contracts.commands import DispatchRun
from controlroom_executor_k8s.service import EXECUTOR_KIND, K8sExecutor
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime


def register(runtime: ServiceRuntime, executor: K8sExecutor) -> None:
    subject = subjects.dispatch_subject(EXECUTOR_KIND)
    runtime.consume(
        ConsumerSpec[DispatchRun](
            name="executor-k8s",
            stream=subjects.DISPATCH_STREAM,
            subjects=[subject],
            models={subject: DispatchRun},
            handler=executor.handle_dispatch,
        )
    )
