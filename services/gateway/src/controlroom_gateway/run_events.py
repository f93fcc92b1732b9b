"""Run event endpoints: push (PRD FR-4), paged history, and a live, resumable SSE stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from controlroom_contracts.api import RunEventIn, RunEventPage
from controlroom_gateway import history_store, service, store
from controlroom_gateway.deps import CurrentOperator, CurrentPrincipal, RuntimeDep, SettingsDep
from controlroom_gateway.errors import PROBLEM, InvalidRequest, RunNotFound
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

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
    summary="Push a progress, log or artifact event for a run",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
async def push_event(
    run_id: UUID,
    body: Annotated[RunEventIn, Body()],
    principal: CurrentOperator,
    runtime: RuntimeDep,
) -> dict[str, str]:
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await service.push_event(uow, run_id, principal, body)
    return {"status": "accepted"}


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
    after = _position(cursor, "query.cursor")
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
    responses={200: {"content": {"text/event-stream": {}}}, 401: PROBLEM, 404: PROBLEM},
)
async def stream_events(
    run_id: UUID,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    await _require_run(runtime, run_id, principal.tenant_id)
    after = _position(last_event_id, "header.last-event-id")

    async def events() -> AsyncIterator[ServerSentEvent]:
        position = after
        while True:
            async with runtime.sessions() as session:
                batch = await history_store.list_run_events(
                    session, principal.tenant_id, run_id, after=position, limit=200
                )
            for item in batch:
                position = item.id
                yield ServerSentEvent(
                    data=item.model_dump_json(), id=str(item.id), event=item.event_type
                )
                if item.event_type in store.TERMINAL_EVENT_TYPES:
                    return
            if batch:
                continue
            # Nothing new: a run that already ended (resumed after its end) closes the stream.
            if await _require_run(runtime, run_id, principal.tenant_id):
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(settings.sse_poll_interval_seconds)

    return EventSourceResponse(events(), ping=15)


def _position(value: str | None, field: str) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise InvalidRequest(
            f"{field} must be an event id returned by this API",
            errors=[{"field": field, "message": "not an event id", "type": "value_error"}],
        )
    return int(value)
