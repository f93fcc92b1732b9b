"""Inbox: at-least-once delivery in, exactly-once effect."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


async def claim(session: AsyncSession, table: sa.Table, consumer: str, event_id: UUID) -> bool:
    """Record ``event_id`` as handled by ``consumer``; False if it already was (a redelivery).

    Runs in the transaction of the effect, so the record and the effect commit or vanish together.
    """
    result = await session.execute(
        insert(table)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return result.first() is not None


async def claim_many(
    session: AsyncSession, table: sa.Table, consumer: str, event_ids: Iterable[UUID]
) -> set[UUID]:
    """``claim`` for a batch in one statement; returns the ids that were not handled before."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    result = await session.execute(
        insert(table)
        .values([{"consumer": consumer, "event_id": event_id} for event_id in unique])
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return set(result.scalars())
