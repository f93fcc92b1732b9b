"""Notices that runs have new history, sent with the transaction that appends it.

``pg_notify`` inside the writing transaction is delivered when it commits and dropped if it
rolls back, so a stream woken by a notice always finds the rows it announces. One statement
per transaction, whatever the number of runs: the runs are grouped by tenant and split into as
few notices as fit Postgres's payload limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

CHANNEL = "gateway_run_events"
"""Channels are per database; the prefix keeps clear of other services sharing one."""

MAX_PAYLOAD_BYTES = 8000
"""Postgres refuses a notice whose payload is this long or longer."""

_UUID_BYTES = len(json.dumps(str(UUID(int=0)))) + 1  # quoted, and a comma


class RunEventsAppended(BaseModel):
    """One notice: the runs, by tenant, that have new history rows since the last one."""

    runs: dict[str, list[UUID]] = Field(default_factory=dict)
    everyone: bool = Field(
        default=False, description="Too much to name: every stream re-reads its run"
    )


_EVERYONE = RunEventsAppended(everyone=True).model_dump_json()
_EMPTY_BYTES = len(RunEventsAppended().model_dump_json())


def payloads(runs: Iterable[tuple[str, UUID]]) -> list[str]:
    """The notices naming ``runs`` (tenant, run id), each under ``MAX_PAYLOAD_BYTES``."""
    chunks: list[dict[str, list[UUID]]] = []
    chunk: dict[str, list[UUID]] = {}
    size = _EMPTY_BYTES
    for tenant, run_id in dict.fromkeys(runs):
        cost = _UUID_BYTES + (0 if tenant in chunk else _tenant_bytes(tenant))
        if chunk and size + cost >= MAX_PAYLOAD_BYTES:
            chunks.append(chunk)
            chunk, size = {}, _EMPTY_BYTES
            cost = _UUID_BYTES + _tenant_bytes(tenant)
        chunk.setdefault(tenant, []).append(run_id)
        size += cost
    if chunk:
        chunks.append(chunk)
    encoded = [RunEventsAppended(runs=c).model_dump_json() for c in chunks]
    # Only a tenant id of thousands of characters can overflow a notice of its own.
    return [p if len(p.encode()) < MAX_PAYLOAD_BYTES else _EVERYONE for p in encoded]


def _tenant_bytes(tenant: str) -> int:
    return len(json.dumps(tenant, ensure_ascii=False).encode()) + 4  # a colon, brackets, comma


_NOTIFY = sa.text(
    "SELECT pg_notify(:channel, payload) FROM unnest(:payloads) AS payload"
).bindparams(sa.bindparam("payloads", type_=ARRAY(sa.Text)))


async def announce(db: AsyncSession | AsyncConnection, runs: Iterable[tuple[str, UUID]]) -> None:
    """Notify, when ``db``'s transaction commits, that ``runs`` (tenant, run id) have new
    history."""
    if notices := payloads(runs):
        await db.execute(_NOTIFY, {"channel": CHANNEL, "payloads": notices})
