"""Refusing at the edge what could never travel: an event larger than the broker takes.

A 1 MiB body passes the body limit, but the events made from it carry more (the job inside
``JobSubmitted``, then inside ``DispatchRun`` with its execution profile; JSON escaping grows
some characters six-fold). One over NATS's ``max_payload`` can never be published: it would
sit in the outbox for good. So the gateway serialises the event it is about to stage and
refuses the request (413, naming the largest parts) when it would not fit with room to spare
for the dispatch built from it.
"""

from __future__ import annotations

import json
from typing import Any

from controlroom_contracts.api import JobRequest
from controlroom_gateway.errors import PayloadTooLarge
from controlroom_runtime.jetstream_publisher import wire_size
from controlroom_runtime.outbox import OutgoingMessage

DISPATCH_HEADROOM = 32 * 1024
"""Room left for what a dispatch adds to the job it carries (execution profile, attempt,
timeout, trace headers); a few KiB in practice."""


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def job_parts(job: JobRequest) -> list[tuple[str, int]]:
    """The job's parts that can be large, with their serialised size, largest first."""
    body = job.model_dump(mode="json")
    parts: list[tuple[str, int]] = [
        ("spec.text", _size(body["spec"]["text"])),
        ("spec.inputs", _size(body["spec"]["inputs"])),
        *(
            (f"code.files[{n}] ({f['path']})", _size(f["content"]))
            for n, f in enumerate(body["code"]["files"])
        ),
    ]
    for name in ("repo", "callbacks"):
        if body.get(name) is not None:
            parts.append((name, _size(body[name])))
    return sorted(parts, key=lambda part: -part[1])


def ensure_publishable(
    message: OutgoingMessage, max_payload: int, *, job: JobRequest | None = None
) -> None:
    """Raise ``PayloadTooLarge`` if ``message`` (with the dispatch made from it, when it
    carries a job) would exceed the broker's ``max_payload``."""
    limit = max_payload - (DISPATCH_HEADROOM if job is not None else 0)
    size = wire_size(message)
    if size <= limit:
        return
    parts = job_parts(job)[:3] if job is not None else []
    named = ", ".join(f"{name} {bytes_} bytes" for name, bytes_ in parts)
    raise PayloadTooLarge(
        f"the event this request makes ({message.subject}) would be {size} bytes; the "
        f"message broker takes at most {limit}" + (f" (largest parts: {named})" if named else ""),
        event_bytes=size,
        limit_bytes=limit,
        parts=[{"field": name, "bytes": bytes_} for name, bytes_ in parts],
    )
