"""Read what a JetStream stream holds, from its first message to its last, with the time the
server stored each one (the record a fault cannot take away from a test, unlike a live
subscription that misses what was published while it was disconnected)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from controlroom_contracts import subjects


@dataclass(frozen=True)
class Stored:
    subject: str
    data: dict[str, Any]
    headers: dict[str, str]
    sequence: int
    stored_at: datetime
    """When the server stored it (UTC)."""
    raw: bytes = b""
    """The body as stored."""

    @property
    def event_id(self) -> str:
        return str(self.data.get("event_id"))

    @property
    def run_id(self) -> str | None:
        run_id = self.data.get("run_id")
        return None if run_id is None else str(run_id)


async def read_stream(
    nats_url: str,
    filter_subjects: Sequence[str] = (subjects.ALL_EVENTS,),
    stream: str = subjects.EVENTS_STREAM,
    batch: int = 1000,
) -> list[Stored]:
    """Every message of ``stream`` on ``filter_subjects`` stored so far, in stream order.

    A body that is not a JSON object is kept as ``{"_raw": <text>}``."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        name = f"chaos-reader-{uuid.uuid4().hex[:12]}"
        await js.add_consumer(
            stream,
            ConsumerConfig(
                name=name,
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                filter_subjects=list(filter_subjects),
                inactive_threshold=60.0,
                mem_storage=True,
            ),
        )
        try:
            sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
            found: list[Stored] = []
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=1.0)
                except TimeoutError:
                    break
                for msg in msgs:
                    found.append(_stored(msg))
                if not msgs or (msgs[-1].metadata.num_pending or 0) == 0:
                    break
            await sub.unsubscribe()
            return found
        finally:
            await js.delete_consumer(stream, name)
    finally:
        await client.close()


def _stored(msg: Any) -> Stored:
    try:
        data = json.loads(msg.data)
    except (ValueError, RecursionError):  # poison the chaos suite sent on purpose
        data = None
    if not isinstance(data, dict):
        data = {"_raw": msg.data.decode(errors="replace")}
    meta = msg.metadata
    return Stored(
        subject=msg.subject,
        data=data,
        headers=dict(msg.headers or {}),
        sequence=meta.sequence.stream,
        stored_at=meta.timestamp,
        raw=msg.data,
    )
