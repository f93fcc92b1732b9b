"""executor-k8s's only wiring point."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import AttemptFailed
from controlroom_contracts.executors import ExecutorHeartbeat
from controlroom_executor.wiring import dispatch_consumer, install_executor
from controlroom_executor_k8s.kube_backend import KubernetesBackend
from controlroom_executor_k8s.settings import ExecutorK8sSettings
from controlroom_executor_k8s.store import metadata, tables
from controlroom_runtime.heartbeat import announce
from controlroom_runtime.service import ServiceRuntime, service_app
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
EXECUTOR_KIND = "k8s"


def create_app(settings: ExecutorK8sSettings | None = None) -> FastAPI:
    settings = settings or ExecutorK8sSettings()
    settings.routing()  # a bad routing file stops the service before it starts

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="executor-k8s", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        if settings.cluster_configured():
            install_executor(
                runtime,
                kind=EXECUTOR_KIND,
                settings=settings,
                tables=tables,
                backend=KubernetesBackend.from_settings(settings),
            )
        else:
            _report_not_ready(runtime, settings)
        return runtime

    return service_app("executor-k8s", settings, build)


NO_CLUSTER = (
    "no Kubernetes cluster configured: set KUBECONFIG (or run executor-k8s inside a cluster), "
    "or route this job type to another executor kind"
)


def _report_not_ready(runtime: ServiceRuntime, settings: ExecutorK8sSettings) -> None:
    """Without a cluster it reports in as not ready (so the scheduler sends it nothing and the
    API says why runs routed to it wait: ``queue_reason: no_executor``), and a dispatch that
    reaches it anyway fails at once with that reason."""
    executor_id = settings.identity(EXECUTOR_KIND)
    started_at = utc_now()

    async def refuse(uow: UnitOfWork, command: DispatchRun) -> None:
        log.warning("dispatch refused", extra={"reason": NO_CLUSTER})
        await uow.emit(
            AttemptFailed(
                tenant_id=command.tenant_id,
                run_id=command.run_id,
                attempt=command.attempt,
                failure_reason=FailureReason.executor_error,
                error=NO_CLUSTER,
                finished_at=utc_now(),
            )
        )

    runtime.consume(dispatch_consumer(EXECUTOR_KIND, refuse))

    def beat() -> ExecutorHeartbeat:
        return ExecutorHeartbeat(
            executor_id=executor_id,
            kind=EXECUTOR_KIND,
            capacity=0,
            running=0,
            ready=False,
            started_at=started_at,
        )

    async def heartbeats(stopping: asyncio.Event) -> None:
        await announce(runtime.broker, beat, settings.heartbeat_interval_seconds, stopping)

    runtime.background(heartbeats)
