"""The scheduler's tables and queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

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


@dataclass(frozen=True)
class NewRun:
    run_id: UUID
    tenant_id: str
    job_type: str
    executor_kind: str | None
    status: RunStatus
    attempt: int


_INSERT_RUNS = sa.text(
    f"""
    INSERT INTO {runs.fullname} (run_id, tenant_id, job_type, executor_kind, status, attempt)
    SELECT * FROM unnest(:run_id, :tenant_id, :job_type, :executor_kind, :status, :attempt)
    ON CONFLICT DO NOTHING
    RETURNING run_id
    """
).bindparams(
    sa.bindparam("run_id", type_=ARRAY(sa.Uuid)),
    sa.bindparam("tenant_id", type_=ARRAY(sa.Text)),
    sa.bindparam("job_type", type_=ARRAY(sa.Text)),
    sa.bindparam("executor_kind", type_=ARRAY(sa.Text)),
    sa.bindparam("status", type_=ARRAY(sa.Text)),
    sa.bindparam("attempt", type_=ARRAY(sa.Integer)),
)


async def insert_runs(session: AsyncSession, new: Sequence[NewRun]) -> set[UUID]:
    """Insert new runs in one statement (the same for any number of runs, so prepared once);
    the ids of those inserted, which leaves out every run id already known."""
    params: dict[str, list[Any]] = {
        "run_id": [r.run_id for r in new],
        "tenant_id": [r.tenant_id for r in new],
        "job_type": [r.job_type for r in new],
        "executor_kind": [r.executor_kind for r in new],
        "status": [r.status.value for r in new],
        "attempt": [r.attempt for r in new],
    }
    return set((await session.execute(_INSERT_RUNS, params)).scalars())


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
