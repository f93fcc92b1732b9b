"""How an executor service plugs the runtime in: consumers, recovery, heartbeats."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import CancelRequested
from controlroom_executor.backend import ExecutionBackend
from controlroom_executor.executor import Executor
from controlroom_executor.settings import ExecutorSettings
from controlroom_executor.store import AttemptStore, ExecutorTables, retention_rules
from controlroom_executor.supervision import ExecutorParts
from controlroom_executor.workspace import checkout_step
from controlroom_runtime.consumer import ConsumerSpec, Handler
from controlroom_runtime.heartbeat import announce
from controlroom_runtime.objectstore import build_object_store
from controlroom_runtime.outbox import outgoing
from controlroom_runtime.room import Room
from controlroom_runtime.service import ServiceRuntime

CLAIMS_AT_ONCE = 4
"""Dispatches claimed concurrently (each a short transaction); attempts are bounded by the room."""


def dispatch_consumer(
    kind: str, handler: Handler[DispatchRun], **options: Any
) -> ConsumerSpec[DispatchRun]:
    """The durable consumer of one executor kind's dispatch work queue."""
    subject = subjects.dispatch_subject(kind)
    return ConsumerSpec[DispatchRun](
        name=f"executor-{kind}",
        stream=subjects.DISPATCH_STREAM,
        subjects=[subject],
        models={subject: DispatchRun},
        handler=handler,
        **options,
    )


def install_executor(
    runtime: ServiceRuntime,
    *,
    kind: str,
    settings: ExecutorSettings,
    tables: ExecutorTables,
    backend: ExecutionBackend,
) -> Executor:
    """Build the executor on ``runtime`` and register everything it runs."""
    stopping = asyncio.Event()

    async def publish(events: Sequence[Message]) -> None:
        await runtime.publish_in_order(
            [outgoing(e, message_id=e.event_id, subject=e.subject) for e in events]
        )

    parts = ExecutorParts(
        kind=kind,
        executor_id=settings.identity(kind),
        backend=backend,
        sessions=runtime.sessions,
        outbox=runtime.outbox,
        publish=publish,
        objects=build_object_store(settings.object_store),
        store=AttemptStore(tables),
        settings=settings,
        profile_for=settings.profile_for,
        prepare_workspace=checkout_step(
            settings.checkout, shares_workspace=backend.shares_workspace
        ),
        stopping=stopping,
    )
    room = Room(settings.executor_capacity, closed=True)  # opened once recovery has counted
    executor = Executor(parts, room)
    runtime.consume(
        dispatch_consumer(
            kind,
            executor.handle_dispatch,
            batch_size=1,
            concurrency=CLAIMS_AT_ONCE,
            room=room,
        )
    )
    # Every replica hears every cancellation: only the one running the attempt can stop it.
    replica = re.sub(r"[^A-Za-z0-9_-]", "_", parts.executor_id)
    runtime.consume(
        ConsumerSpec[CancelRequested](
            name=f"executor-{kind}-cancel-{replica}",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.CANCEL_REQUESTED],
            models={subjects.CANCEL_REQUESTED: CancelRequested},
            handler=executor.handle_cancel,
            only_new=True,
        )
    )

    async def recover(_stopping: asyncio.Event) -> None:
        try:
            await executor.recover()
        finally:
            room.open()

    async def stop() -> None:
        stopping.set()
        await executor.stop()
        await backend.close()

    runtime.background(recover)
    runtime.on_stop(stop)
    retention = runtime.settings
    kept_for = timedelta(days=retention.run_retention_days + retention.run_purge_grace_days)
    for rule in retention_rules(tables, kept_for):
        runtime.retain(rule)
    runtime.background(
        lambda service_stopping: announce(
            runtime.broker,
            executor.heartbeat,
            settings.heartbeat_interval_seconds,
            service_stopping,
        )
    )
    return executor
