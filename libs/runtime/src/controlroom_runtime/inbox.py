"""Inbox: at-least-once delivery in, exactly-once effect."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
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
    result = await session.execute(_claim_many(table), {"consumer": consumer, "ids": unique})
    return set(result.scalars())


@functools.cache
def _claim_many(table: sa.Table) -> sa.Insert:
    """``INSERT ... SELECT :consumer, unnest(:ids)``: the same SQL for any batch size, so it is
    compiled and prepared once. A multi-row VALUES differs with every batch size, and its
    compilation was a tenth of a consumer's CPU."""
    ids = sa.func.unnest(sa.bindparam("ids", type_=ARRAY(sa.Uuid)))
    rows = sa.select(sa.bindparam("consumer", type_=sa.Text), ids)
    return (
        insert(table)
        .from_select(["consumer", "event_id"], rows)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
