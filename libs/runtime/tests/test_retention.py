"""Retention against a real Postgres: rows past their horizon go, in batches; the rest stay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_runtime import db
from controlroom_runtime.messaging_tables import inbox_table
from controlroom_runtime.retention import RetentionRule, prune_once


async def test_rows_past_the_horizon_are_deleted_in_batches_and_seen_before(
    database_url: str,
) -> None:
    metadata = sa.MetaData(schema="retention_test")
    inbox = inbox_table(metadata)
    engine = db.create_engine(database_url)
    sessions = db.session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE SCHEMA retention_test"))
            await conn.run_sync(metadata.create_all)
            for age_days, consumer in [(40, "old")] * 7 + [(1, "new")] * 3 + [(40, "kept")] * 2:
                await conn.execute(
                    sa.insert(inbox).values(
                        consumer=consumer,
                        event_id=uuid4(),
                        handled_at=sa.func.now() - timedelta(days=age_days),
                    )
                )
        seen: list[str] = []

        async def before_delete(_session: AsyncSession, rows: Sequence[sa.Row[Any]]) -> None:
            seen.extend(row.consumer for row in rows)

        rule = RetentionRule(
            "inbox",
            inbox,
            "handled_at",
            timedelta(days=35),
            where=inbox.c.consumer != "kept",
            before_delete=before_delete,
        )
        assert await prune_once(sessions, rule, batch_size=3) == 7
        assert seen == ["old"] * 7
        async with sessions() as session:
            left = sorted((await session.execute(sa.select(inbox.c.consumer))).scalars())
        assert left == ["kept", "kept", "new", "new", "new"]
        assert await prune_once(sessions, rule, batch_size=3) == 0
    finally:
        await engine.dispose()
