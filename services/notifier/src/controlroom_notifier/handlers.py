"""Notifier subscribers: submissions (callbacks), terminal run events, endpoint and delivery
admin."""

from __future__ import annotations

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.events import JobSubmitted, RunCancelled, RunCompleted, RunFailed
from controlroom_contracts.management import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    GetWebhookEndpoint,
    ListWebhookDeliveries,
    ListWebhookEndpoints,
    RedeliverWebhookDeliveries,
    RedeliverWebhookDelivery,
)
from controlroom_notifier.deliveries import DeliveryAdmin
from controlroom_notifier.endpoints import EndpointAdmin
from controlroom_notifier.service import Notifier
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import UnitOfWork


def register(runtime: ServiceRuntime, notifier: Notifier, deliveries: DeliveryAdmin) -> None:
    models: dict[str, type[Message]] = {
        subjects.JOB_SUBMITTED: JobSubmitted,
        subjects.RUN_COMPLETED: RunCompleted,
        subjects.RUN_FAILED: RunFailed,
        subjects.RUN_CANCELLED: RunCancelled,
    }

    async def on_event(uow: UnitOfWork, event: Message) -> None:
        if isinstance(event, JobSubmitted):
            await notifier.on_job_submitted(uow, event)
        elif isinstance(event, RunCompleted | RunFailed | RunCancelled):
            await notifier.on_terminal(uow, event)

    runtime.consume(
        ConsumerSpec[Message](
            name="notifier",
            stream=subjects.EVENTS_STREAM,
            subjects=list(models),
            models=models,
            handler=on_event,
        )
    )

    admin = EndpointAdmin(runtime)
    answer(runtime, CreateWebhookEndpoint, admin.create, queue="notifier")
    answer(runtime, ListWebhookEndpoints, admin.list, queue="notifier")
    answer(runtime, GetWebhookEndpoint, admin.get, queue="notifier")
    answer(runtime, DeleteWebhookEndpoint, admin.delete, queue="notifier")
    answer(runtime, ListWebhookDeliveries, deliveries.list, queue="notifier")
    answer(runtime, RedeliverWebhookDelivery, deliveries.redeliver, queue="notifier")
    answer(runtime, RedeliverWebhookDeliveries, deliveries.redeliver_all, queue="notifier")
