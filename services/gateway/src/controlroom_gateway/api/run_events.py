"""Run event endpoints: push (PRD FR-4), paged history, and a live, resumable SSE stream."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, status
from sse_starlette import EventSourceResponse

from controlroom_contracts.api import RunEventIn, RunEventPage
from controlroom_contracts.responses import Accepted
from controlroom_gateway.api.deps import CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.event_source import SlotHoldingEventSource
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.runs import events

router = APIRouter(
    prefix="/api/v1/runs/{run_id}/events", tags=["run events"], route_class=InteroperableJsonRoute
)


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
    gateway: GatewayDep,
) -> Accepted:
    await events.push_event(gateway, principal, run_id, body)
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
    gateway: GatewayDep,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RunEventPage:
    return await events.list_events(gateway, principal, run_id, cursor=cursor, limit=limit)


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
    gateway: GatewayDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    stream = await events.follow_events(gateway, principal, run_id, last_event_id=last_event_id)
    return SlotHoldingEventSource(stream.events, stream.slot, ping=15)
