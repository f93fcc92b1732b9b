"""The scheduler's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_runtime.service import ServiceRuntime, service_app
from controlroom_scheduler import handlers
from controlroom_scheduler.routing import routing_table
from controlroom_scheduler.service import Scheduler
from controlroom_scheduler.settings import SchedulerSettings
from controlroom_scheduler.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: SchedulerSettings | None = None) -> FastAPI:
    settings = settings or SchedulerSettings()

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="scheduler", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        routes = routing_table(settings.routing_profile, settings.routes)
        handlers.register(runtime, Scheduler(routes, settings.run_timeout_seconds, runtime.metrics))
        return runtime

    return service_app("scheduler", settings, build)
