"""executor-docker's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_executor.wiring import install_executor
from controlroom_executor_docker.backends import build_backend
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_executor_docker.store import metadata, tables
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"
EXECUTOR_KIND = "docker"


def create_app(settings: ExecutorDockerSettings | None = None) -> FastAPI:
    settings = settings or ExecutorDockerSettings()
    settings.routing()  # a bad routing file stops the service before it starts

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="executor-docker", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        install_executor(
            runtime,
            kind=EXECUTOR_KIND,
            settings=settings,
            tables=tables,
            backend=build_backend(settings),
        )
        return runtime

    return service_app("executor-docker", settings, build)
