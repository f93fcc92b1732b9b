"""Following a run live: its events as they commit, until it ends.

A stream sleeps until its run's events commit (``wakeups``), re-reads from its last event id,
and holds one of its tenant's stream slots (``stream_slots``) until it closes, whether the run
ended, the client hung up or the server stopped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from uuid import UUID

from controlroom_gateway.errors import InvalidRequest, TooManyRequests
from controlroom_gateway.read_model import history_store, store
from controlroom_gateway.runs.stream_slots import StreamSlot, StreamSlots
from controlroom_gateway.runs.wakeups import RunWakeups
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

PAGE = 200
"""Events read per query; a stream resumed far back catches up a page at a time."""

STREAM_RETRY_AFTER_SECONDS = 5
"""Retry-After of a stream refused at its tenant's cap: streams last as long as their runs,
so a slot frees at no predictable time; a few seconds keeps retries cheap."""


@dataclass(frozen=True)
class StreamEvent:
    """One event of a live stream, as Server-Sent Events carry it (the API sends it as one)."""

    id: str
    """The position to resume after (``Last-Event-ID``)."""
    event: str
    data: str
    """JSON."""


@dataclass(frozen=True)
class OpenStream:
    """A live stream opened for a caller: its events, and the tenant's slot it holds. Whoever
    consumes ``events`` closes ``slot`` once done, however the stream ends."""

    events: AsyncGenerator[StreamEvent, None]
    slot: StreamSlot


@dataclass(frozen=True)
class LiveStreams:
    """What the live streams of one API process share."""

    wakeups: RunWakeups
    slots: StreamSlots
    safety_poll_seconds: float
    """How long a stream sleeps without a wake-up before it re-reads anyway."""

    @classmethod
    def of(cls, settings: GatewaySettings) -> LiveStreams:
        return cls(
            RunWakeups(settings.database_url),
            StreamSlots(settings.sse_max_streams_per_tenant),
            settings.sse_poll_interval_seconds,
        )

    async def follow(
        self, runtime: ServiceRuntime, tenant_id: str, run_id: UUID, *, after: int
    ) -> AsyncGenerator[StreamEvent, None]:
        """The run's events after event id ``after``, as they commit; ends with the run."""
        position = after
        # Watching before the first read: whatever commits after that read wakes the stream.
        with self.wakeups.watch_run(tenant_id, run_id) as wake:
            while True:
                async with runtime.sessions() as session:
                    # The run's end commits with its last events. Read whether it has ended
                    # first: an end seen here has its events in the read that follows.
                    state = await store.run_state(session, run_id, tenant_id)
                    batch = await history_store.list_run_events(
                        session, tenant_id, run_id, after=position, limit=PAGE
                    )
                for item in batch:
                    position = item.id
                    yield StreamEvent(
                        data=item.model_dump_json(), id=str(item.id), event=item.event_type
                    )
                    if item.event_type in store.TERMINAL_EVENT_TYPES:
                        return
                if len(batch) == PAGE:
                    continue
                if state is None or state[0].is_terminal:
                    return  # resumed after its end, or ended without a terminal event
                await wake.wait(self.safety_poll_seconds)


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
    """The event id a page or a stream starts after (0: from the start), read from ``value``
    (a cursor or a ``Last-Event-ID``); a 422 naming ``field`` when it is not one."""
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise InvalidRequest(
            f"{field} must be an event id returned by this API",
            errors=[{"field": field, "message": "not an event id", "type": "value_error"}],
        )
    return int(value)
