"""executor-docker's only wiring point."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from controlroom_contracts.base import utc_now
from controlroom_contracts.executors import ExecutorHeartbeat
from controlroom_executor_docker import handlers
from controlroom_executor_docker.local_backend import LocalProcessBackend
from controlroom_executor_docker.service import EXECUTOR_KIND, Executor
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_executor_docker.store import metadata
from controlroom_runtime.heartbeat import announce
from controlroom_runtime.objectstore import build_object_store
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ExecutorDockerSettings | None = None) -> FastAPI:
    settings = settings or ExecutorDockerSettings()

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="executor-docker", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        backend = LocalProcessBackend(
            settings.executor_workdir,
            python=settings.job_python,
            memory_limit_bytes=settings.job_memory_limit_bytes,
            max_output_bytes=settings.job_max_output_bytes,
            log_tail_bytes=settings.job_log_tail_bytes,
            keep_workdirs=settings.keep_workdirs,
        )
        executor = Executor(
            backend,
            settings.executor_id,
            runtime.sessions,
            runtime.outbox,
            build_object_store(settings.object_store),
            settings.max_artifact_bytes,
        )
        handlers.register(runtime, executor, settings.executor_capacity, settings.executor_id)

        async def recover(_stopping: asyncio.Event) -> None:
            await executor.fail_orphaned_attempts()

        runtime.background(recover)
        started_at = utc_now()

        def beat() -> ExecutorHeartbeat:
            return ExecutorHeartbeat(
                executor_id=settings.executor_id,
                kind=EXECUTOR_KIND,
                capacity=settings.executor_capacity,
                running=len(executor.held),
                attempts=list(executor.held.values()),
                ready=True,
                started_at=started_at,
            )

        runtime.background(
            lambda stopping: announce(
                runtime.broker, beat, settings.heartbeat_interval_seconds, stopping
            )
        )
        return runtime

    return service_app("executor-docker", settings, build)
