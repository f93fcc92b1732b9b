"""Retention: rows past their horizon deleted in small batches, on a timer, by every replica.

A rule names a table, the timestamp column that ages its rows, and a horizon; an optional
``where`` narrows it (only finished runs, say) and an optional ``before_delete`` acts on each
batch first, in the same transaction (removing a run's stored objects). Batches are small and
skip rows another replica holds, so pruning never blocks the service's own writes for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

BeforeDelete = Callable[[AsyncSession, Sequence[sa.Row[Any]]], Awaitable[None]]


@dataclass(frozen=True)
class RetentionRule:
    name: str
    table: sa.Table
    aged_by: str
    """The timestamp column: a row is past the horizon when this is older than it."""
    horizon: timedelta
    where: sa.ColumnElement[bool] | None = None
    before_delete: BeforeDelete | None = None
    """Called with each batch's rows (all columns) before they are deleted."""

    def batch(self, size: int) -> sa.Select[Any]:
        t = self.table
        condition = t.c[self.aged_by] < sa.func.now() - self.horizon
        if self.where is not None:
            condition = sa.and_(condition, self.where)
        return sa.select(t).where(condition).limit(size).with_for_update(skip_locked=True)


async def prune_once(
    sessions: async_sessionmaker[AsyncSession], rule: RetentionRule, *, batch_size: int = 1000
) -> int:
    """Delete every row past the rule's horizon, a batch per transaction; how many."""
    deleted = 0
    key = list(rule.table.primary_key.columns)
    while True:
        async with sessions.begin() as session:
            rows = (await session.execute(rule.batch(batch_size))).all()
            if not rows:
                break
            if rule.before_delete is not None:
                await rule.before_delete(session, rows)
            await session.execute(
                sa.delete(rule.table).where(
                    sa.tuple_(*key).in_([tuple(getattr(r, c.name) for c in key) for r in rows])
                )
            )
        deleted += len(rows)
        if len(rows) < batch_size:
            break
    if deleted:
        log.info("retention pruned rows", extra={"rule": rule.name, "count": deleted})
    return deleted


async def run_retention(
    sessions: async_sessionmaker[AsyncSession],
    rules: Sequence[RetentionRule],
    interval: float,
    stopping: asyncio.Event,
) -> None:
    """Prune by every rule, then wait ``interval``; for the life of the service."""
    while not stopping.is_set():
        for rule in rules:
            try:
                await prune_once(sessions, rule)
            except Exception:
                log.warning("retention pass failed", exc_info=True, extra={"rule": rule.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval)
