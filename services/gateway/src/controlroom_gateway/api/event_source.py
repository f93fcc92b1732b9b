"""A live stream (``runs.live_streams``) as a Server-Sent Events response."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from controlroom_gateway.runs.live_streams import StreamEvent
from controlroom_gateway.runs.stream_slots import StreamSlot


class SlotHoldingEventSource(EventSourceResponse):
    """An event stream that gives its tenant's slot back once it is over, however it ends."""

    def __init__(
        self, content: AsyncGenerator[StreamEvent, None], slot: StreamSlot, **kw: Any
    ) -> None:
        super().__init__(self._releasing(content, slot), **kw)
        self._slot = slot

    @staticmethod
    async def _releasing(
        content: AsyncGenerator[StreamEvent, None], slot: StreamSlot
    ) -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in content:
                yield ServerSentEvent(data=event.data, id=event.id, event=event.event)
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
