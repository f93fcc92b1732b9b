"""What the Runboard reads besides the runs list: counts per status, the tenant's live feed of
run changes, a run's job, and a run's artifacts as one ZIP. Public API like the rest: the UI
has no endpoint of its own."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from controlroom_contracts.api import RunCounts, RunJobView
from controlroom_gateway import artifact_zip, run_feed, run_jobs, store
from controlroom_gateway.deps import AskerDep, CurrentPrincipal, RuntimeDep
from controlroom_gateway.errors import PROBLEM, NotFound, RunNotFound
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.live_streams import SlotHoldingEventSource
from controlroom_gateway.run_events import LiveStreamsDep, stream_position, take_stream_slot
from controlroom_gateway.run_filters import RunFilters
from controlroom_runtime.objectstore import ObjectStore

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], route_class=InteroperableJsonRoute)


@router.get(
    "/counts",
    response_model=RunCounts,
    summary="How many of the tenant's runs match the filters, per status",
    description="The filters of `GET /api/v1/runs`, less `status`.",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def count_runs(
    principal: CurrentPrincipal, runtime: RuntimeDep, filters: RunFilters
) -> RunCounts:
    async with runtime.sessions() as session:
        counts = await store.count_runs(session, principal.tenant_id, filters)
    return RunCounts(counts=counts, total=sum(counts.values()))


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
    runtime: RuntimeDep,
    streams: LiveStreamsDep,
    ask: AskerDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    after = (
        None if last_event_id is None else stream_position(last_event_id, "header.last-event-id")
    )
    slot = take_stream_slot(streams, principal.tenant_id, stream="runs")
    changes = run_feed.follow_tenant(streams, runtime, ask, principal.tenant_id, after=after)
    return SlotHoldingEventSource(changes, slot, ping=15)


@router.get(
    "/{run_id}/job",
    response_model=RunJobView,
    summary="The job a run was submitted with: spec, code and settings (callbacks left out)",
    responses={
        401: PROBLEM,
        404: PROBLEM | {"description": "No such run for this tenant, or its job was not kept"},
    },
)
async def get_run_job(run_id: UUID, principal: CurrentPrincipal, runtime: RuntimeDep) -> RunJobView:
    async with runtime.sessions() as session:
        job = await run_jobs.get_job(session, principal.tenant_id, run_id)
        if job is None and await store.run_state(session, run_id, principal.tenant_id) is None:
            raise RunNotFound(f"run {run_id} not found")
    if job is None:
        raise NotFound(f"the job of run {run_id} was not kept (submitted before jobs were)")
    return job


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
    request: Request, run_id: UUID, principal: CurrentPrincipal, runtime: RuntimeDep
) -> StreamingResponse:
    async with runtime.sessions() as session:
        if await store.run_state(session, run_id, principal.tenant_id) is None:
            raise RunNotFound(f"run {run_id} not found")
        artifacts = await store.run_artifacts(session, run_id, principal.tenant_id)
    objects: ObjectStore = request.app.state.object_store
    return StreamingResponse(
        artifact_zip.zipped(objects, artifacts),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.zip"'},
    )
