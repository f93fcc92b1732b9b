"""Notifier's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_notifier import handlers, retention
from controlroom_notifier.deliveries import DeliveryAdmin
from controlroom_notifier.delivery import Deliverer
from controlroom_notifier.pool import DeliveryPool
from controlroom_notifier.service import Notifier
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.store import metadata
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NotifierSettings | None = None, *, policy: CallbackPolicy | None = None
) -> FastAPI:
    """The notifier; ``policy`` judges callback URLs (by default: the allow-list setting and
    the system's resolver)."""
    settings = settings or NotifierSettings()
    policy = policy or CallbackPolicy(settings.callback_allowlist)

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="notifier", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        deliverer = Deliverer(settings, runtime.sessions, runtime.outbox, policy)
        pool = DeliveryPool(settings, runtime.sessions, deliverer)
        handlers.register(runtime, Notifier(pool.wake), DeliveryAdmin(runtime.sessions, pool.wake))
        runtime.background(pool.run)
        retention.install(runtime, settings)
        return runtime

    return service_app("notifier", settings, build)
