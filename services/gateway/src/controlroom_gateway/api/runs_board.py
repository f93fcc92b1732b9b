"""What the Runboard reads besides the runs list: counts per status, the tenant's live feed of
run changes, a run's job, and a run's artifacts as one ZIP. Public API like the rest: the UI
has no endpoint of its own."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from controlroom_contracts.api import RunCounts, RunJobView
from controlroom_gateway.api.deps import CurrentPrincipal, GatewayDep
from controlroom_gateway.api.event_source import SlotHoldingEventSource
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.api.run_filters import RunFilters
from controlroom_gateway.runs import artifacts, queries, run_feed

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], route_class=InteroperableJsonRoute)


@router.get(
    "/counts",
    response_model=RunCounts,
    summary="How many of the tenant's runs match the filters, per status",
    description="The filters of `GET /api/v1/runs`, less `status`.",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def count_runs(
    principal: CurrentPrincipal, gateway: GatewayDep, filters: RunFilters
) -> RunCounts:
    return await queries.count_runs(gateway, principal, filters)


@router.get(
    "/stream",
    summary="Live Server-Sent Events of the tenant's run changes; resumable with Last-Event-ID",
    description="First `ready` (its id is the position the stream starts after), then one "
    "`run` event per change of a run's status (queued, dispatched, started, retry scheduled, "
    "completed, failed, cancelled) carrying the run's current view. Several changes of a run "
    "close together may arrive as one, at the position of the last. The stream does not end "
    "by itself; it holds one of the tenant's live stream slots while open.",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: PROBLEM,
        422: PROBLEM | {"description": "Last-Event-ID is not an id this stream sent"},
        429: PROBLEM,
    },
)
async def stream_run_changes(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    stream = run_feed.follow_run_changes(gateway, principal, last_event_id=last_event_id)
    return SlotHoldingEventSource(stream.events, stream.slot, ping=15)


@router.get(
    "/{run_id}/job",
    response_model=RunJobView,
    summary="The job a run was submitted with: spec, code and settings (callbacks left out)",
    responses={
        401: PROBLEM,
        404: PROBLEM | {"description": "No such run for this tenant, or its job was not kept"},
    },
)
async def get_run_job(run_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep) -> RunJobView:
    return await queries.get_run_job(gateway, principal, run_id)


@router.get(
    "/{run_id}/artifacts.zip",
    summary="Every artifact of the run in one ZIP archive, under their paths",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        401: PROBLEM,
        404: PROBLEM,
    },
)
async def download_run_artifacts(
    run_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep
) -> StreamingResponse:
    return StreamingResponse(
        await artifacts.zip_run_artifacts(gateway, principal, run_id),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.zip"'},
    )
