"""A run's events: pushed over the API (PRD FR-4) or by a Continue callback, read back in
pages, and followed live until the run ends."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from controlroom_contracts.api import (
    ContinueCallback,
    LogEventIn,
    ProgressEventIn,
    RunEventIn,
    RunEventPage,
)
from controlroom_contracts.events import (
    ArtifactReported,
    ContinueCallbackReceived,
    RunLog,
    RunProgress,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import RunNotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs import event_size
from controlroom_gateway.read_model import history_store, store
from controlroom_gateway.runs.live_streams import OpenStream, stream_position, take_stream_slot
from controlroom_runtime.outbox import outgoing
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work


async def require_run(gateway: Gateway, run_id: UUID, tenant_id: str) -> bool:
    """The run exists for this tenant; returns whether it has ended."""
    async with gateway.runtime.sessions() as session:
        state = await store.run_state(session, run_id, tenant_id)
    if state is None:
        raise RunNotFound(f"run {run_id} not found")
    return state[0].is_terminal


async def push_event(
    gateway: Gateway, principal: Principal, run_id: UUID, body: RunEventIn
) -> None:
    """Record a progress, log or artifact event of the run (published as a run event; its
    history follows from it)."""
    runtime = gateway.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await emit_pushed_event(
            uow, run_id, principal, body, max_payload=runtime.broker.connection.max_payload
        )


async def emit_pushed_event(
    uow: UnitOfWork, run_id: UUID, principal: Principal, body: RunEventIn, *, max_payload: int
) -> None:
    """An event pushed over REST becomes a run event on NATS (history follows from it);
    one the broker could not take (``max_payload``) is refused."""
    row = await store.lock_run(uow.session, run_id, principal.tenant_id)
    if row is None:
        raise RunNotFound(f"run {run_id} not found")
    common: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "run_id": run_id,
        "attempt": max(row.attempt, 1),
    }
    if body.timestamp is not None:
        common["occurred_at"] = body.timestamp
    event: RunProgress | RunLog | ArtifactReported
    if isinstance(body, ProgressEventIn):
        event = RunProgress(**common, percent=body.data.percent, message=body.data.message)
    elif isinstance(body, LogEventIn):
        event = RunLog(**common, stream=body.data.stream, lines=body.data.lines)
    else:
        event = ArtifactReported(**common, **body.data.model_dump())
    message = outgoing(event, message_id=event.event_id, subject=event.subject)
    event_size.ensure_publishable(message, max_payload)
    await uow.emit_outgoing(message)


async def receive_continue_callback(
    gateway: Gateway, principal: Principal, body: ContinueCallback
) -> None:
    """Record a Continue callback as a run event; the run's status stays the scheduler's."""
    runtime = gateway.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        row = await store.lock_run(uow.session, body.run_id, principal.tenant_id)
        if row is None:
            raise RunNotFound(f"run {body.run_id} not found")
        await uow.emit(
            ContinueCallbackReceived(
                tenant_id=principal.tenant_id,
                run_id=body.run_id,
                status=body.status,
                summary=body.summary,
                artifacts=body.artifacts,
                received_from=principal.subject,
            )
        )


async def list_events(
    gateway: Gateway, principal: Principal, run_id: UUID, *, cursor: str | None, limit: int
) -> RunEventPage:
    """A page of the run's history, oldest first, after ``cursor`` (a ``next_cursor``)."""
    await require_run(gateway, run_id, principal.tenant_id)
    after = stream_position(cursor, "query.cursor")
    async with gateway.runtime.sessions() as session:
        items = await history_store.list_run_events(
            session, principal.tenant_id, run_id, after=after, limit=limit + 1
        )
    next_cursor = str(items[limit - 1].id) if len(items) > limit else None
    return RunEventPage(items=items[:limit], next_cursor=next_cursor)


async def follow_events(
    gateway: Gateway, principal: Principal, run_id: UUID, *, last_event_id: str | None
) -> OpenStream:
    """The run's events after ``last_event_id`` as they commit, ending with the run; holds one
    of the tenant's live stream slots (429 when it has all of them open)."""
    await require_run(gateway, run_id, principal.tenant_id)
    after = stream_position(last_event_id, "header.last-event-id")
    streams = gateway.live_streams
    slot = take_stream_slot(streams, principal.tenant_id, run_id=str(run_id))
    events = streams.follow(gateway.runtime, principal.tenant_id, run_id, after=after)
    return OpenStream(events, slot)
