"""JetStream streams, provisioned idempotently by every service at start."""

from __future__ import annotations

import logging

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError

from controlroom_contracts import subjects

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
DUPLICATE_WINDOW = 120.0
"""Seconds in which JetStream drops a second publish with the same Nats-Msg-Id."""
MIB = 1 << 20
# nats-server reserves each stream's max_bytes against the store it may use (75 % of the free
# disk by default), so these stay modest enough for a developer's machine.
EVENTS_MAX_BYTES = 2048 * MIB
"""Past it the oldest events go first: every consumer keeps its own state, so the history is
only for consumers catching up (and the age bound, 7 days, usually comes first)."""
DISPATCH_MAX_BYTES = 256 * MIB
"""Past it a new dispatch is refused rather than an old one dropped: the scheduler's outbox
holds it and retries, and ``/readyz`` reports the stall."""
DEADLETTER_MAX_BYTES = 256 * MIB


def stream_configs() -> list[StreamConfig]:
    return [
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=[subjects.ALL_EVENTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_bytes=EVENTS_MAX_BYTES,
            discard=DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW,
        ),
        StreamConfig(
            name=subjects.DISPATCH_STREAM,
            subjects=[subjects.ALL_DISPATCH],
            # A work queue: each dispatch is consumed once, then removed.
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_bytes=DISPATCH_MAX_BYTES,
            discard=DiscardPolicy.NEW,
            duplicate_window=DUPLICATE_WINDOW,
        ),
        StreamConfig(
            name=subjects.DEADLETTER_STREAM,
            subjects=[subjects.ALL_DEADLETTER],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=30 * DAY,
            max_bytes=DEADLETTER_MAX_BYTES,
            discard=DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW,
        ),
    ]


async def provision_streams(js: JetStreamContext) -> None:
    """Create each stream, or bring an existing one to the declared configuration."""
    for config in stream_configs():
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != 10058:  # stream name already in use with a different config
                raise
            await js.update_stream(config)
            log.info("stream configuration updated", extra={"stream": config.name})
