"""Lineage's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_lineage import handlers
from controlroom_lineage.settings import LineageSettings
from controlroom_lineage.store import metadata
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="lineage", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        handlers.register(runtime, settings)
        return runtime

    return service_app("lineage", settings, build)
