"""A run's history in the read model: appended a batch at a time, read in pages.

Every append also notifies (``run_notices``), in its transaction, that the runs it names have
new history: live streams are woken by that commit instead of polling for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.api import RunEventView
from controlroom_gateway.read_model import run_notices
from controlroom_gateway.read_model.store import run_events

_RUN_EVENT_COLUMNS = ("tenant_id", "run_id", "event_type", "occurred_at", "data")
_APPEND_LOCK = "gateway.run_events"
# Held until the transaction ends, taken in one order (sorted) so two appenders never wait on
# each other in a circle.
_LOCK_TENANTS = sa.text(
    """
    SELECT pg_advisory_xact_lock(hashtext(:lock), hashtext(tenant_id))
    FROM (SELECT DISTINCT tenant_id FROM unnest(:tenant_ids) AS t(tenant_id)) AS tenants
    ORDER BY tenant_id
    """
).bindparams(sa.bindparam("tenant_ids", type_=ARRAY(sa.Text)))
_ADD_RUN_EVENTS = sa.text(
    f"""
    INSERT INTO {run_events.fullname} (tenant_id, run_id, event_type, occurred_at, data)
    SELECT tenant_id, run_id, event_type, occurred_at, data::jsonb
    FROM unnest(:tenant_id, :run_id, :event_type, :occurred_at, :data)
         WITH ORDINALITY AS e(tenant_id, run_id, event_type, occurred_at, data, position)
    ORDER BY position
    """
).bindparams(
    sa.bindparam("tenant_id", type_=ARRAY(sa.Text)),
    sa.bindparam("run_id", type_=ARRAY(sa.Uuid)),
    sa.bindparam("event_type", type_=ARRAY(sa.Text)),
    sa.bindparam("occurred_at", type_=ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("data", type_=ARRAY(sa.Text)),
)


async def add_run_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append history rows (``data`` as JSON text) in one statement, ids in the given order,
    and announce the runs they belong to when the transaction commits.

    The statement is the same for any number of rows (arrays, not a row of parameters per
    event), so it is prepared once.

    A history id is drawn when its row is inserted, not when it commits. Readers go by id
    (``id > last seen``): were two appenders (two projector replicas) to commit out of id order,
    a reader between the two commits would pass the lower id for good. So an append first
    locks its tenants until it commits: within a tenant, ids commit in order. One projector
    takes the lock uncontended.
    """
    await session.execute(
        _LOCK_TENANTS, {"lock": _APPEND_LOCK, "tenant_ids": [row["tenant_id"] for row in rows]}
    )
    await session.execute(
        _ADD_RUN_EVENTS,
        {key: [row[key] for row in rows] for key in _RUN_EVENT_COLUMNS},
    )
    await run_notices.announce(session, ((row["tenant_id"], row["run_id"]) for row in rows))


async def list_run_events(
    session: AsyncSession, tenant_id: str, run_id: UUID, *, after: int, limit: int
) -> list[RunEventView]:
    rows = await session.execute(
        sa.select(run_events)
        .where(
            run_events.c.run_id == run_id,
            run_events.c.tenant_id == tenant_id,
            run_events.c.id > after,
        )
        .order_by(run_events.c.id)
        .limit(limit)
    )
    return [
        RunEventView(id=r.id, event_type=r.event_type, occurred_at=r.occurred_at, data=r.data)
        for r in rows
    ]
