"""The scheduler's tables and queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from controlroom_contracts.api import RunStatus
from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="scheduler")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("job_type", sa.Text, nullable=False),
    sa.Column("executor_kind", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ignored_events", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("ix_runs_tenant_status", "tenant_id", "status"),
)


@dataclass(frozen=True)
class RunRow:
    run_id: UUID
    tenant_id: str
    job_type: str
    executor_kind: str | None
    status: RunStatus
    attempt: int
    updated_at: datetime


async def insert_run(
    session: AsyncSession,
    *,
    run_id: UUID,
    tenant_id: str,
    job_type: str,
    executor_kind: str | None,
    status: RunStatus,
    attempt: int,
) -> bool:
    """Insert a new run; False when the run id is already known."""
    params = {
        "run_id": run_id,
        "tenant_id": tenant_id,
        "job_type": job_type,
        "executor_kind": executor_kind,
        "status": status.value,
        "attempt": attempt,
    }
    return (await session.execute(_insert_run(), params)).first() is not None


@cache
def _insert_run() -> ReturningInsert[UUID]:
    """Built once: it runs for every submission, and building it costs more than running it."""
    return insert(runs).on_conflict_do_nothing().returning(runs.c.run_id)


async def get_run_for_update(session: AsyncSession, run_id: UUID, tenant_id: str) -> RunRow | None:
    row = (
        await session.execute(
            sa.select(runs)
            .where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return RunRow(
        run_id=row.run_id,
        tenant_id=row.tenant_id,
        job_type=row.job_type,
        executor_kind=row.executor_kind,
        status=RunStatus(row.status),
        attempt=row.attempt,
        updated_at=row.updated_at,
    )


async def set_status(session: AsyncSession, run_id: UUID, status: RunStatus) -> None:
    await session.execute(
        sa.update(runs)
        .where(runs.c.run_id == run_id)
        .values(status=status.value, updated_at=sa.func.now())
    )


async def count_ignored(session: AsyncSession, run_id: UUID) -> None:
    await session.execute(
        sa.update(runs)
        .where(runs.c.run_id == run_id)
        .values(ignored_events=runs.c.ignored_events + 1)
    )
