"""executor-k8s's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_contracts.base import utc_now
from controlroom_contracts.executors import ExecutorHeartbeat
from controlroom_executor_k8s import handlers
from controlroom_executor_k8s.service import EXECUTOR_KIND, K8sExecutor
from controlroom_executor_k8s.settings import ExecutorK8sSettings
from controlroom_executor_k8s.store import metadata
from controlroom_runtime.heartbeat import announce
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ExecutorK8sSettings | None = None) -> FastAPI:
    settings = settings or ExecutorK8sSettings()

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="executor-k8s", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        handlers.register(runtime, K8sExecutor(settings.cluster_configured()))
        started_at = utc_now()

        def beat() -> ExecutorHeartbeat:
            # It reports in even without a cluster, as not ready, so the API can say why.
            return ExecutorHeartbeat(
                executor_id=settings.executor_id,
                kind=EXECUTOR_KIND,
                capacity=0,
                running=0,
                ready=False,
                started_at=started_at,
            )

        runtime.background(
            lambda stopping: announce(
                runtime.broker, beat, settings.heartbeat_interval_seconds, stopping
            )
        )
        return runtime

    return service_app("executor-k8s", settings, build)
