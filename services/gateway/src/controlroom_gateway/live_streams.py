"""Following a run live: its events as they commit, until it ends.

A stream sleeps until its run's events commit (``wakeups``), re-reads from its last event id,
and holds one of its tenant's stream slots (``stream_slots``) until it closes, whether the run
ended, the client hung up or the server stopped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from controlroom_gateway import history_store, store
from controlroom_gateway.settings import GatewaySettings
from controlroom_gateway.stream_slots import StreamSlot, StreamSlots
from controlroom_gateway.wakeups import RunWakeups
from controlroom_runtime.service import ServiceRuntime

PAGE = 200
"""Events read per query; a stream resumed far back catches up a page at a time."""


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
    ) -> AsyncGenerator[ServerSentEvent, None]:
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
                    yield ServerSentEvent(
                        data=item.model_dump_json(), id=str(item.id), event=item.event_type
                    )
                    if item.event_type in store.TERMINAL_EVENT_TYPES:
                        return
                if len(batch) == PAGE:
                    continue
                if state is None or state[0].is_terminal:
                    return  # resumed after its end, or ended without a terminal event
                await wake.wait(self.safety_poll_seconds)


class SlotHoldingEventSource(EventSourceResponse):
    """An event stream that gives its tenant's slot back once it is over, however it ends."""

    def __init__(
        self, content: AsyncGenerator[ServerSentEvent, None], slot: StreamSlot, **kw: Any
    ) -> None:
        super().__init__(self._releasing(content, slot), **kw)
        self._slot = slot

    @staticmethod
    async def _releasing(
        content: AsyncGenerator[ServerSentEvent, None], slot: StreamSlot
    ) -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in content:
                yield event
        finally:
            # Before the stream's last bytes go out: a client that saw a stream end may open
            # another at once.
            slot.close()
            await content.aclose()  # its wake-up too, if this one was closed while it waited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A client that hung up cancels the response, possibly before the stream ever ran.
            self._slot.close()
