"""Queries over ``scheduler.schedules``: always filtered by tenant, except the ticker's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from controlroom_contracts.schedules import ScheduleView
from controlroom_scheduler.clock import Clock
from controlroom_scheduler.store import Reader, schedules

s = schedules


@dataclass(frozen=True)
class Schedule:
    """A stored schedule, as the ticker and the views read it."""

    schedule_id: UUID
    tenant_id: str
    template: str
    version: int | None
    cron: str | None
    interval_seconds: int | None
    timezone: str
    inputs: dict[str, str]
    paused: bool
    next_fire_at: datetime
    last_fired_at: datetime | None
    last_run_id: UUID | None
    last_error: str | None
    created_by: str
    created_at: datetime

    @property
    def clock(self) -> Clock:
        return Clock(self.cron, self.interval_seconds, self.timezone)

    def view(self) -> ScheduleView:
        return ScheduleView(
            schedule_id=self.schedule_id,
            template=self.template,
            version=self.version,
            cron=self.cron,
            interval_seconds=self.interval_seconds,
            timezone=self.timezone,
            inputs=self.inputs,
            paused=self.paused,
            next_fire_at=None if self.paused else self.next_fire_at,
            last_fired_at=self.last_fired_at,
            last_run_id=self.last_run_id,
            last_error=self.last_error,
            created_by=self.created_by,
            created_at=self.created_at,
        )


def _schedule(row: sa.Row[Any]) -> Schedule:
    return Schedule(**row._mapping)


async def insert(db: Reader, schedule: Schedule) -> Schedule:
    row = (await db.execute(sa.insert(s).values(**schedule.__dict__).returning(s))).one()
    return _schedule(row)


async def get(
    db: Reader, tenant_id: str, schedule_id: UUID, *, lock: bool = False
) -> Schedule | None:
    query = sa.select(s).where(s.c.schedule_id == schedule_id, s.c.tenant_id == tenant_id)
    row = (await db.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else _schedule(row)


async def list_newest_first(
    db: Reader, tenant_id: str, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[Schedule]:
    """Keyset pagination on (created_at, schedule_id), so pages never shift."""
    query = sa.select(s).where(s.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(sa.tuple_(s.c.created_at, s.c.schedule_id) < sa.tuple_(*after))
    query = query.order_by(s.c.created_at.desc(), s.c.schedule_id.desc()).limit(limit)
    return [_schedule(row) for row in await db.execute(query)]


async def set_paused(
    db: Reader, tenant_id: str, schedule_id: UUID, *, paused: bool, next_fire_at: datetime
) -> Schedule | None:
    row = (
        await db.execute(
            sa.update(s)
            .where(s.c.schedule_id == schedule_id, s.c.tenant_id == tenant_id)
            .values(paused=paused, next_fire_at=next_fire_at)
            .returning(s)
        )
    ).first()
    return None if row is None else _schedule(row)


async def delete(db: Reader, tenant_id: str, schedule_id: UUID) -> bool:
    result = await db.execute(
        sa.delete(s)
        .where(s.c.schedule_id == schedule_id, s.c.tenant_id == tenant_id)
        .returning(s.c.schedule_id)
    )
    return result.first() is not None


# -- the ticker ------------------------------------------------------------------------------


async def due(db: Reader, now: datetime, limit: int) -> list[Schedule]:
    """Schedules with a tick due, most overdue first; read without locks (see ``lock_due``)."""
    query = (
        sa.select(s)
        .where(sa.not_(s.c.paused), s.c.next_fire_at <= now)
        .order_by(s.c.next_fire_at)
        .limit(limit)
    )
    return [_schedule(row) for row in await db.execute(query)]


async def lock_due(db: Reader, schedule_ids: Sequence[UUID], now: datetime) -> list[Schedule]:
    """Those of ``schedule_ids`` still due, locked for this transaction.

    Another replica's pass holding one skips it here (SKIP LOCKED); one that committed moved
    its ``next_fire_at`` past now, and Postgres re-checks the condition on that newer row. So
    of two replicas, exactly one fires a tick."""
    query = (
        sa.select(s)
        .where(s.c.schedule_id.in_(schedule_ids), sa.not_(s.c.paused), s.c.next_fire_at <= now)
        .order_by(s.c.schedule_id)
        .with_for_update(skip_locked=True)
    )
    return [_schedule(row) for row in await db.execute(query)]


@dataclass(frozen=True)
class Ticked:
    """What a tick changed in its schedule: fired (``run_id``) or skipped (``error``)."""

    schedule_id: UUID
    next_fire_at: datetime
    fired_at: datetime | None = None
    run_id: UUID | None = None
    error: str | None = None
    paused: bool = False


_TICKED: dict[str, sa.types.TypeEngine[Any]] = {
    "schedule_id": sa.Uuid(),
    "next_fire_at": sa.DateTime(timezone=True),
    "fired_at": sa.DateTime(timezone=True),
    "run_id": sa.Uuid(),
    "error": sa.Text(),
    "paused": sa.Boolean(),
}
_WRITE_TICKS = sa.text(
    f"""
    UPDATE {s.fullname} AS s
    SET next_fire_at = t.next_fire_at,
        last_fired_at = coalesce(t.fired_at, s.last_fired_at),
        last_run_id = coalesce(t.run_id, s.last_run_id),
        last_error = t.error,
        paused = s.paused OR t.paused
    FROM unnest({", ".join(f":{c}" for c in _TICKED)}) AS t({", ".join(_TICKED)})
    WHERE s.schedule_id = t.schedule_id
    """
).bindparams(*(sa.bindparam(c, type_=ARRAY(t)) for c, t in _TICKED.items()))


async def write_ticks(db: Reader, ticks: Sequence[Ticked]) -> None:
    """Record every tick of a pass in one statement."""
    await db.execute(_WRITE_TICKS, {c: [getattr(t, c) for t in ticks] for c in _TICKED})
