"""Run event endpoints: push (PRD FR-4), paged history, and a live, resumable SSE stream."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, Query, Request, status
from sse_starlette import EventSourceResponse

from controlroom_contracts.api import RunEventIn, RunEventPage
from controlroom_contracts.responses import Accepted
from controlroom_gateway import history_store, service, store
from controlroom_gateway.deps import CurrentOperator, CurrentPrincipal, RuntimeDep
from controlroom_gateway.errors import PROBLEM, InvalidRequest, RunNotFound, TooManyRequests
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.live_streams import LiveStreams, SlotHoldingEventSource
from controlroom_gateway.stream_slots import StreamSlot
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

STREAM_RETRY_AFTER_SECONDS = 5
"""Retry-After of a stream refused at its tenant's cap: streams last as long as their runs,
so a slot frees at no predictable time; a few seconds keeps retries cheap."""


async def _live_streams(request: Request) -> LiveStreams:
    streams: LiveStreams = request.app.state.live_streams
    return streams


LiveStreamsDep = Annotated[LiveStreams, Depends(_live_streams)]

router = APIRouter(
    prefix="/api/v1/runs/{run_id}/events", tags=["run events"], route_class=InteroperableJsonRoute
)


async def _require_run(runtime: ServiceRuntime, run_id: UUID, tenant_id: str) -> bool:
    """The run exists for this tenant; returns whether it has ended."""
    async with runtime.sessions() as session:
        state = await store.run_state(session, run_id, tenant_id)
    if state is None:
        raise RunNotFound(f"run {run_id} not found")
    return state[0].is_terminal


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Push a progress, log or artifact event for a run",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM},
)
async def push_event(
    run_id: UUID,
    body: Annotated[RunEventIn, Body()],
    principal: CurrentOperator,
    runtime: RuntimeDep,
) -> Accepted:
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await service.push_event(
            uow, run_id, principal, body, max_payload=runtime.broker.connection.max_payload
        )
    return Accepted()


@router.get(
    "",
    response_model=RunEventPage,
    summary="A run's event history, oldest first",
    responses={401: PROBLEM, 404: PROBLEM},
)
async def list_events(
    run_id: UUID,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RunEventPage:
    await _require_run(runtime, run_id, principal.tenant_id)
    after = stream_position(cursor, "query.cursor")
    async with runtime.sessions() as session:
        items = await history_store.list_run_events(
            session, principal.tenant_id, run_id, after=after, limit=limit + 1
        )
    next_cursor = str(items[limit - 1].id) if len(items) > limit else None
    return RunEventPage(items=items[:limit], next_cursor=next_cursor)


@router.get(
    "/stream",
    summary="Live Server-Sent Events; resumable with Last-Event-ID; ends when the run ends",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: PROBLEM,
        404: PROBLEM,
        429: PROBLEM,
    },
)
async def stream_events(
    run_id: UUID,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    streams: LiveStreamsDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    await _require_run(runtime, run_id, principal.tenant_id)
    after = stream_position(last_event_id, "header.last-event-id")
    slot = take_stream_slot(streams, principal.tenant_id, run_id=str(run_id))
    events = streams.follow(runtime, principal.tenant_id, run_id, after=after)
    return SlotHoldingEventSource(events, slot, ping=15)


def take_stream_slot(streams: LiveStreams, tenant_id: str, **context: str) -> StreamSlot:
    """One of the tenant's live stream slots, or 429 when it has all of them open."""
    slot = streams.slots.take(tenant_id)
    if slot is None:
        log.info(
            "event stream refused: the tenant has its most streams open",
            extra={"tenant_id": tenant_id, **context},
        )
        raise TooManyRequests(
            f"tenant {tenant_id} has {streams.slots.limit} live event streams open; "
            f"close one or retry in {STREAM_RETRY_AFTER_SECONDS}s",
            retry_after=STREAM_RETRY_AFTER_SECONDS,
        )
    return slot


def stream_position(value: str | None, field: str) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise InvalidRequest(
            f"{field} must be an event id returned by this API",
            errors=[{"field": field, "message": "not an event id", "type": "value_error"}],
        )
    return int(value)
