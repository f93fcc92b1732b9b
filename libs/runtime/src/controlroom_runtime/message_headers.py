"""The NATS headers of the messages a handler is handling, for the handler to read.

A batch handler gets one call for many messages, each with its own headers (its own trace
context): ``of(event_id)`` names one message's, inside the consumer's ``carrying`` block.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from uuid import UUID

_HEADERS: contextvars.ContextVar[Mapping[UUID, Mapping[str, str]] | None] = contextvars.ContextVar(
    "controlroom_message_headers", default=None
)


def of(event_id: UUID) -> Mapping[str, str]:
    """The headers of the message that carried ``event_id`` (empty outside a handler)."""
    return (_HEADERS.get() or {}).get(event_id, {})


@contextlib.contextmanager
def carrying(headers: Mapping[UUID, Mapping[str, str]]) -> Iterator[None]:
    """Within the block, ``of`` answers for these messages."""
    token = _HEADERS.set(headers)
    try:
        yield
    finally:
        _HEADERS.reset(token)
