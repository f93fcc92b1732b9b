"""Notifier's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_notifier import handlers
from controlroom_notifier.delivery import DeliveryWorker
from controlroom_notifier.service import Notifier
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.store import metadata
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="notifier", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        worker = DeliveryWorker(settings, runtime.sessions, runtime.outbox)
        handlers.register(runtime, Notifier(worker.wake))
        runtime.background(worker.run)
        return runtime

    return service_app("notifier", settings, build)
