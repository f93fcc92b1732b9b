"""The MCP tools: each one calls a use case with the caller's ``Principal``, as the REST route
of the same job does, and answers the same shapes (``RunView``, ``RunPage``, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from controlroom_contracts.api import (
    LANE_PATTERN,
    NoNulStr,
    RunPage,
    RunStatus,
    RunView,
    SubmitResponse,
    ValidationReport,
)
from controlroom_contracts.responses import RunCancelAccepted
from controlroom_contracts.rpc import MAX_GRAPH_NODES, LineageGraph
from controlroom_gateway.jobs import submit, validate
from controlroom_gateway.lineage import graph
from controlroom_gateway.mcp import reading
from controlroom_gateway.mcp.caller import Ctx, caller_of
from controlroom_gateway.mcp.reading import ArtifactContent, ArtifactList, RunLogs
from controlroom_gateway.read_model.store import RunFilter
from controlroom_gateway.runs import cancel, queries

WRITE_TOOLS = frozenset({"submit_job", "cancel_run"})
"""Operator tools: a viewer's token does not see them listed and may not call them."""
READ_TOOLS = frozenset(
    {
        "validate_job",
        "get_run",
        "wait_for_run",
        "get_logs",
        "list_runs",
        "list_artifacts",
        "get_artifact",
        "lineage_graph",
    }
)

MAX_WAIT_SECONDS = 300.0
DEFAULT_WAIT_SECONDS = 25.0
"""Well under the 60 s request timeout of the MCP TypeScript SDK (Continue's client): a wait
still going at its default deadline answers the view instead of timing the request out."""

RunId = Annotated[UUID, Field(description="The run's id (run_id of submit_job or list_runs)")]
JobBody = Annotated[
    dict[str, Any],
    Field(
        description="The job, as for POST /api/v1/jobs/run: job_type, spec {description, "
        "inputs, outputs}, code {files: [{path, content}], entrypoint}, optional name, repo, "
        "lane, priority, retry, timeout_seconds, session_id, on_complete, on_fail"
    ),
]
READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


async def validate_job(job: JobBody, ctx: Ctx) -> ValidationReport:
    """Pre-flight a job without running it: every problem at once (schema with its field, the
    syntax of each code file with line and column, limits, inputs, callbacks, routing to a
    ready executor). ``valid`` is false when ``errors`` is not empty."""
    caller = caller_of(ctx)
    return await validate.validate_job(caller.gateway, job)


async def submit_job(
    job: JobBody,
    ctx: Ctx,
    idempotency_key: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            description="The same key and job within 24 h return the first run instead of "
            "queueing another (safe to retry)",
        ),
    ] = None,
) -> SubmitResponse:
    """Submit a job; its run is queued. An invalid job is refused with every problem listed
    (the tool error's ``errors``). Follow the run with wait_for_run and get_logs."""
    caller = caller_of(ctx)
    submission = await submit.submit_job(
        caller.gateway, caller.principal, job, idempotency_key=idempotency_key
    )
    return SubmitResponse(run_id=submission.run_id, created_at=submission.created_at)


async def get_run(run_id: RunId, ctx: Ctx) -> RunView:
    """The run now: status, attempts, exit code, failure reason and error, artifacts, and why
    it waits when queued."""
    caller = caller_of(ctx)
    return await queries.get_run(caller.gateway, caller.principal, run_id)


async def wait_for_run(
    run_id: RunId,
    ctx: Ctx,
    timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=MAX_WAIT_SECONDS,
            description="How long to wait at most (default 25); keep it below the client's "
            "own request timeout (60 s in clients built on the MCP TypeScript SDK, such as "
            "Continue), or the request times out instead of answering",
        ),
    ] = DEFAULT_WAIT_SECONDS,
) -> RunView:
    """Wait until the run has finished (completed, failed or cancelled) or ``timeout_seconds``
    have passed, and return its view then: a status that is not final means the deadline came
    first (call again to keep waiting). A client whose requests time out after 60 s must pass
    less than 60."""
    caller = caller_of(ctx)
    return await reading.wait_for_run(caller.gateway, caller.principal, run_id, timeout_seconds)


async def get_logs(
    run_id: RunId,
    ctx: Ctx,
    tail: Annotated[
        int, Field(ge=1, le=reading.MAX_LOG_LINES, description="The last N lines of the range")
    ] = 200,
    after_event_id: Annotated[
        int | None,
        Field(ge=0, description="Only lines of events after this event id (a next_after_event_id)"),
    ] = None,
    until_event_id: Annotated[
        int | None, Field(ge=1, description="Only lines of events up to this event id")
    ] = None,
) -> RunLogs:
    """The run's log lines (stdout and stderr), oldest first: the last ``tail`` lines, of the
    events after ``after_event_id`` and up to ``until_event_id`` when given. Pass
    ``next_after_event_id`` back as ``after_event_id`` for the lines written since."""
    caller = caller_of(ctx)
    return await reading.run_logs(
        caller.gateway,
        caller.principal,
        run_id,
        tail=tail,
        after=after_event_id or 0,
        until=until_event_id,
    )


async def cancel_run(run_id: RunId, ctx: Ctx) -> RunCancelAccepted:
    """Cancel a run: a queued one at once, a running one by terminating it; idempotent. A run
    that already completed or failed is refused (409)."""
    caller = caller_of(ctx)
    return await cancel.cancel_run(caller.gateway, caller.principal, run_id)


async def list_runs(
    ctx: Ctx,
    status: RunStatus | None = None,
    # As the REST query's filters (``api.run_filters``): Postgres text cannot hold a NUL.
    job_type: Annotated[NoNulStr | None, Field(max_length=64)] = None,
    created_by: Annotated[NoNulStr | None, Field(max_length=256)] = None,
    since: Annotated[datetime | None, Field(description="Created at or after (ISO 8601)")] = None,
    session_id: UUID | None = None,
    lane: Annotated[str | None, Field(pattern=LANE_PATTERN)] = None,
    schedule_id: UUID | None = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
    cursor: Annotated[
        str | None, Field(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> RunPage:
    """The tenant's runs, newest first, filtered; one page of ``limit`` and the cursor of the
    next."""
    caller = caller_of(ctx)
    filters = RunFilter(
        status=status,
        job_type=job_type,
        created_by=created_by,
        since=since,
        session_id=session_id,
        lane=lane,
        schedule_id=schedule_id,
    )
    return await queries.list_runs(
        caller.gateway, caller.principal, filters, limit=limit, cursor=cursor
    )


async def list_artifacts(run_id: RunId, ctx: Ctx) -> ArtifactList:
    """The artifacts the run stored: path, size, sha256 checksum, content type and id (for
    get_artifact)."""
    caller = caller_of(ctx)
    run = await queries.get_run(caller.gateway, caller.principal, run_id)
    return ArtifactList(run_id=run_id, items=list(run.artifacts))


async def get_artifact(
    artifact_id: Annotated[UUID, Field(description="The artifact's id (list_artifacts)")],
    ctx: Ctx,
) -> ArtifactContent:
    """An artifact: its text inline when it is text of at most 64 KiB, otherwise the URL to
    download it from (GET with the same bearer token)."""
    caller = caller_of(ctx)
    return await reading.artifact_content(caller.gateway, caller.principal, artifact_id)


async def lineage_graph(
    entity: Annotated[
        str, Field(min_length=1, max_length=1024, description="e.g. warehouse.orders, s3://b/k")
    ],
    ctx: Ctx,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Field(ge=1, le=10)] = 1,
    limit: Annotated[int, Field(ge=1, le=MAX_GRAPH_NODES)] = 500,
    include_deleted: bool = False,
) -> LineageGraph:
    """The lineage around a dataset: what feeds it (upstream) and what it feeds (downstream),
    up to ``depth`` hops, with the job and latest run of each edge."""
    caller = caller_of(ctx)
    found = await graph.lineage_graph(
        caller.gateway,
        caller.principal,
        entity=entity,
        direction=direction,
        depth=depth,
        limit=limit,
        include_deleted=include_deleted,
        format="json",
    )
    return LineageGraph.model_validate_json(found)


def register(server: FastMCP[Any]) -> None:
    for tool in (
        validate_job,
        get_run,
        wait_for_run,
        get_logs,
        list_runs,
        list_artifacts,
        get_artifact,
        lineage_graph,
    ):
        server.add_tool(tool, annotations=READ)
    server.add_tool(submit_job, annotations=ToolAnnotations(destructiveHint=False))
    server.add_tool(cancel_run, annotations=ToolAnnotations(destructiveHint=True))
