"""The tenant's run changes, live: what the Runboard follows instead of polling.

A change is a history entry that moves a run's status (``store.RUN_CHANGE_EVENT_TYPES``); its
history id is the feed's position, so a client resumes with ``Last-Event-ID``. Each change is
sent as the run's *current* view (queue reason and place in line included), not the entry
itself: a board replaces its card and needs nothing else. Several changes of one run read in
one batch are sent once, at the position of the last.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_gateway.auth import Principal
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.read_model import store
from controlroom_gateway.read_model.store import run_events
from controlroom_gateway.rpc import Asker
from controlroom_gateway.runs import queue_info
from controlroom_gateway.runs.live_streams import (
    LiveStreams,
    OpenStream,
    StreamEvent,
    stream_position,
    take_stream_slot,
)
from controlroom_runtime.service import ServiceRuntime

PAGE = 500
"""Changes read per query: a feed resumed far back catches up a page at a time."""

_CHANGES = run_events.c.event_type.in_(store.RUN_CHANGE_EVENT_TYPES)


def follow_run_changes(
    gateway: Gateway, principal: Principal, *, last_event_id: str | None
) -> OpenStream:
    """The tenant's run changes, live, after ``last_event_id`` (None: from now on); holds one
    of the tenant's live stream slots (429 when it has all of them open)."""
    after = (
        None if last_event_id is None else stream_position(last_event_id, "header.last-event-id")
    )
    streams = gateway.live_streams
    slot = take_stream_slot(streams, principal.tenant_id, stream="runs")
    changes = follow_tenant(streams, gateway.runtime, gateway.ask, principal.tenant_id, after=after)
    return OpenStream(changes, slot)


async def current_position(session: AsyncSession, tenant_id: str) -> int:
    """The position of the tenant's latest change (0 when it has none)."""
    latest = await session.scalar(
        sa.select(sa.func.max(run_events.c.id)).where(run_events.c.tenant_id == tenant_id, _CHANGES)
    )
    return latest or 0


def changes_query(tenant_id: str, after: int, limit: int) -> sa.Select[int, UUID]:
    """(position, run id) of the tenant's changes after ``after``, oldest first."""
    return (
        sa.select(run_events.c.id, run_events.c.run_id)
        .where(run_events.c.tenant_id == tenant_id, run_events.c.id > after, _CHANGES)
        .order_by(run_events.c.id)
        .limit(limit)
    )


async def changes_after(
    session: AsyncSession, tenant_id: str, after: int, limit: int
) -> list[tuple[int, UUID]]:
    rows = await session.execute(changes_query(tenant_id, after, limit))
    return [(position, run_id) for position, run_id in rows]


async def follow_tenant(
    streams: LiveStreams,
    runtime: ServiceRuntime,
    ask: Asker,
    tenant_id: str,
    *,
    after: int | None,
) -> AsyncGenerator[StreamEvent, None]:
    """``ready`` at the starting position, then a ``run`` event per change; never ends."""
    # Watching before the first read: whatever commits after that read wakes the feed.
    with streams.wakeups.watch_tenant(tenant_id) as wake:
        async with runtime.sessions() as session:
            latest = await current_position(session, tenant_id)
        # A position past the tenant's latest change was never sent by this database (it was
        # restored or replaced): resumed from there, the feed would stay silent until the
        # tenant's history caught up with it.
        after = latest if after is None or after > latest else after
        yield StreamEvent(data="{}", id=str(after), event="ready")
        while True:
            async with runtime.sessions() as session:
                changes = await changes_after(session, tenant_id, after, PAGE)
                last_change = {run_id: position for position, run_id in changes}
                views = await store.runs_by_id(session, tenant_id, list(last_change))
            explained = await queue_info.explained(list(views.values()), tenant_id, ask)
            for view in sorted(explained, key=lambda v: last_change[v.run_id]):
                yield StreamEvent(
                    data=view.model_dump_json(), id=str(last_change[view.run_id]), event="run"
                )
            if changes:
                after = changes[-1][0]  # past changes of runs no longer shown, too
            if len(changes) < PAGE:
                await wake.wait(streams.safety_poll_seconds)
