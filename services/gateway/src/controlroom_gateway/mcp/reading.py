"""What the read tools answer beyond a use case's own shape: waiting for a run on its live
events, its log lines, an artifact's text."""

from __future__ import annotations

import time
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, Field

from controlroom_contracts.api import ArtifactView, RunView
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import ArtifactNotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.read_model import store
from controlroom_gateway.read_model.store import run_events
from controlroom_gateway.runs import events, queries
from controlroom_gateway.runs.live_streams import take_stream_slot
from controlroom_runtime.objectstore import ObjectMissing

MAX_LOG_LINES = 5000
EVENT_PAGE = 500
INLINE_BYTES = 64 * 1024
"""Text artifacts up to this size come inline; larger ones (and binary ones) as a URL."""

TEXT_TYPES = ("application/json", "application/xml", "application/yaml", "application/x-yaml")


class LogLine(BaseModel):
    event_id: int = Field(description="The run event that carried the line")
    stream: str = Field(description="stdout or stderr")
    line: str


class RunLogs(BaseModel):
    run_id: UUID
    lines: list[LogLine]
    truncated: bool = Field(description="Earlier lines of the range were left out (tail)")
    next_after_event_id: int = Field(
        description="Pass as after_event_id for the lines written after these"
    )


class ArtifactList(BaseModel):
    run_id: UUID
    items: list[ArtifactView]


class ArtifactContent(BaseModel):
    artifact: ArtifactView
    text: str | None = Field(
        default=None, description="The content, when it is text of at most 64 KiB"
    )
    download_url: str = Field(description="GET with the same bearer token: the bytes")
    inline: bool


async def wait_for_run(
    gateway: Gateway, principal: Principal, run_id: UUID, timeout_seconds: float
) -> RunView:
    """The run's view once it has finished, or at the deadline, whichever comes first. Woken
    by the commits of the run's events (as a live stream is), holding one of the tenant's
    stream slots while it waits."""
    deadline = time.monotonic() + timeout_seconds
    view = await queries.get_run(gateway, principal, run_id)
    if view.status.is_terminal:
        return view
    streams = gateway.live_streams
    slot = take_stream_slot(streams, principal.tenant_id, run_id=str(run_id))
    try:
        # Watching before the read below: an end that commits after it wakes this wait.
        with streams.wakeups.watch_run(principal.tenant_id, run_id) as wake:
            while True:
                view = await queries.get_run(gateway, principal, run_id)
                left = deadline - time.monotonic()
                if view.status.is_terminal or left <= 0:
                    return view
                await wake.wait(min(left, streams.safety_poll_seconds))
    finally:
        slot.close()


async def run_logs(
    gateway: Gateway,
    principal: Principal,
    run_id: UUID,
    *,
    tail: int,
    after: int,
    until: int | None,
) -> RunLogs:
    """The last ``tail`` log lines of the run's events after ``after`` (up to ``until``).

    Read from the newest end of the range backwards, a page of log events at a time, until
    ``tail`` lines are in hand: a long run's history is not read from its start on every call.
    """
    await events.require_run(gateway, run_id, principal.tenant_id)
    in_range = [
        run_events.c.run_id == run_id,
        run_events.c.tenant_id == principal.tenant_id,
        run_events.c.id > after,
    ]
    if until is not None:
        in_range.append(run_events.c.id <= until)
    newest_first: list[list[LogLine]] = []
    count = 0
    async with gateway.runtime.sessions() as session:
        last = await session.scalar(sa.select(sa.func.max(run_events.c.id)).where(*in_range))
        position = after if last is None else int(last)
        # Up to ``position`` only: lines committed since are the next call's, not this one's.
        before = position + 1
        while count <= tail and before > after + 1:
            page = (
                await session.execute(
                    sa.select(run_events.c.id, run_events.c.data)
                    .where(*in_range, run_events.c.event_type == "log", run_events.c.id < before)
                    .order_by(run_events.c.id.desc())
                    .limit(EVENT_PAGE)
                )
            ).all()
            for event_id, data in page:
                stream = str(data.get("stream") or "stdout")
                lines = data.get("lines") or []
                newest_first.append(
                    [LogLine(event_id=event_id, stream=stream, line=str(line)) for line in lines]
                )
                count += len(lines)
            if len(page) < EVENT_PAGE:
                break
            before = page[-1].id
    kept = [line for lines in reversed(newest_first) for line in lines]
    return RunLogs(
        run_id=run_id,
        lines=kept[-tail:],
        truncated=len(kept) > tail,
        next_after_event_id=position,
    )


def _is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES or media.endswith("+json")


async def artifact_content(
    gateway: Gateway, principal: Principal, artifact_id: UUID
) -> ArtifactContent:
    """The artifact with its text inline when it is UTF-8 text of at most ``INLINE_BYTES``;
    its object is opened only then (its row says which)."""
    async with gateway.runtime.sessions() as session:
        row = await store.get_artifact(session, artifact_id, principal.tenant_id)
    if row is None:
        raise ArtifactNotFound(f"artifact {artifact_id} not found")
    view = row.view()
    url = f"/api/v1/artifacts/{artifact_id}"
    if view.size_bytes > INLINE_BYTES or not _is_text(view.content_type):
        return ArtifactContent(artifact=view, download_url=url, inline=False)
    chunks = gateway.objects.get(row.storage_key)
    body = bytearray()
    try:
        async for chunk in chunks:
            body += chunk
            if len(body) > INLINE_BYTES:  # the row said otherwise: keep to the limit anyway
                break
    except ObjectMissing as exc:
        raise ArtifactNotFound(f"artifact {artifact_id} has no stored object") from exc
    finally:
        await chunks.aclose()  # gives back the file or connection without reading it all
    try:
        text = bytes(body).decode("utf-8") if len(body) <= INLINE_BYTES else None
    except UnicodeDecodeError:
        text = None
    return ArtifactContent(artifact=view, text=text, download_url=url, inline=text is not None)
