"""What the read tools answer beyond a use case's own shape: waiting for a run on its live
events, its log lines, an artifact's text."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from uuid import UUID

from pydantic import BaseModel, Field

from controlroom_contracts.api import ArtifactView, RunView
from controlroom_gateway.auth import Principal
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.runs import artifacts, events, queries
from controlroom_gateway.runs.live_streams import take_stream_slot

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
    """The last ``tail`` log lines of the run's events after ``after`` (up to ``until``)."""
    kept: list[LogLine] = []
    truncated = False
    position = after
    cursor: str | None = str(after) if after else None
    more = True
    while more:
        page = await events.list_events(gateway, principal, run_id, cursor=cursor, limit=EVENT_PAGE)
        cursor, more = page.next_cursor, page.next_cursor is not None
        for event in page.items:
            if until is not None and event.id > until:
                more = False
                break
            position = event.id
            if event.event_type != "log":
                continue
            stream = str(event.data.get("stream") or "stdout")
            lines = event.data.get("lines") or []
            kept += [LogLine(event_id=event.id, stream=stream, line=str(line)) for line in lines]
            if len(kept) > tail:
                truncated = True
                del kept[: len(kept) - tail]
    return RunLogs(run_id=run_id, lines=kept, truncated=truncated, next_after_event_id=position)


def _is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES or media.endswith("+json")


async def artifact_content(
    gateway: Gateway, principal: Principal, artifact_id: UUID
) -> ArtifactContent:
    """The artifact with its text inline when it is UTF-8 text of at most ``INLINE_BYTES``."""
    download = await artifacts.download_artifact(gateway, principal, artifact_id, redirect=False)
    view = download.artifact.view()
    url = f"/api/v1/artifacts/{artifact_id}"
    chunks = download.chunks
    if chunks is None or view.size_bytes > INLINE_BYTES or not _is_text(view.content_type):
        await _close(chunks)
        return ArtifactContent(artifact=view, download_url=url, inline=False)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > INLINE_BYTES:
            break
    await _close(chunks)
    try:
        text = bytes(body).decode("utf-8") if len(body) <= INLINE_BYTES else None
    except UnicodeDecodeError:
        text = None
    return ArtifactContent(artifact=view, text=text, download_url=url, inline=text is not None)


async def _close(chunks: AsyncIterator[bytes] | None) -> None:
    """Give back what reading the object holds (a file, a connection) without reading it all."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
