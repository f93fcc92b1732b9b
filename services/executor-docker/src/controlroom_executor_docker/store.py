"""executor-docker's tables: one row per attempt it claimed."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="executor_docker")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("executor_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # running | completed | failed
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column(
        "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_attempts_executor_status", "executor_id", "status"),
)

cancellations = sa.Table(
    "cancellations",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column(
        "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


async def note_cancellation(session: AsyncSession, run_id: UUID, tenant_id: str) -> None:
    await session.execute(
        insert(cancellations).values(run_id=run_id, tenant_id=tenant_id).on_conflict_do_nothing()
    )


async def is_cancelled(session: AsyncSession, run_id: UUID) -> bool:
    found = await session.execute(
        sa.select(cancellations.c.run_id).where(cancellations.c.run_id == run_id)
    )
    return found.first() is not None


async def claim_attempt(
    session: AsyncSession, *, run_id: UUID, attempt: int, tenant_id: str, executor_id: str
) -> bool:
    """The unique (run_id, attempt) row: two executors never run the same attempt."""
    result = await session.execute(
        insert(attempts)
        .values(
            run_id=run_id,
            attempt=attempt,
            tenant_id=tenant_id,
            executor_id=executor_id,
            status="running",
        )
        .on_conflict_do_nothing()
        .returning(attempts.c.run_id)
    )
    return result.first() is not None


async def finish_attempt(
    session: AsyncSession, run_id: UUID, attempt: int, status: str, exit_code: int | None
) -> bool:
    result = await session.execute(
        sa.update(attempts)
        .where(
            attempts.c.run_id == run_id,
            attempts.c.attempt == attempt,
            attempts.c.status == "running",
        )
        .values(status=status, exit_code=exit_code, finished_at=sa.func.now())
        .returning(attempts.c.run_id)
    )
    return result.first() is not None


async def running_attempts(session: AsyncSession, executor_id: str) -> list[tuple[UUID, int, str]]:
    rows = await session.execute(
        sa.select(attempts.c.run_id, attempts.c.attempt, attempts.c.tenant_id).where(
            attempts.c.executor_id == executor_id, attempts.c.status == "running"
        )
    )
    return [(r.run_id, r.attempt, r.tenant_id) for r in rows]
