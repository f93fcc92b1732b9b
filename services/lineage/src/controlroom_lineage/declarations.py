"""What our own runs declared (their job and datasets), kept until they complete: working
state for recording their lineage, not lineage itself (pruned with the runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_lineage.store import declared_io


@dataclass(frozen=True)
class Declared:
    tenant_id: str
    job_name: str
    sources: list[str]
    targets: list[str]


async def note_declared(
    session: AsyncSession,
    *,
    run_id: UUID,
    tenant_id: str,
    job_type: str,
    job_name: str,
    sources: list[str],
    targets: list[str],
) -> bool:
    """Record what a run declared; whether it has completed already (events may cross)."""
    values = insert(declared_io).values(
        run_id=run_id,
        tenant_id=tenant_id,
        job_type=job_type,
        job_name=job_name,
        sources=sources,
        targets=targets,
        submitted=True,
    )
    stmt = values.on_conflict_do_update(
        index_elements=[declared_io.c.run_id],
        set_={
            "job_type": values.excluded.job_type,
            "job_name": values.excluded.job_name,
            "sources": values.excluded.sources,
            "targets": values.excluded.targets,
            "submitted": True,
        },
    ).returning(declared_io.c.completed)
    return bool((await session.execute(stmt)).scalar_one())


async def note_completed(session: AsyncSession, *, run_id: UUID, tenant_id: str) -> None:
    stmt = insert(declared_io).values(run_id=run_id, tenant_id=tenant_id, completed=True)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[declared_io.c.run_id], set_={"completed": True})
    )


async def declared(session: AsyncSession, run_id: UUID) -> Declared | None:
    """What the run declared, once its submission was seen."""
    row = (
        await session.execute(
            sa.select(
                declared_io.c.tenant_id,
                declared_io.c.job_name,
                declared_io.c.job_type,
                declared_io.c.sources,
                declared_io.c.targets,
            ).where(declared_io.c.run_id == run_id, declared_io.c.submitted)
        )
    ).first()
    return None if row is None else _declared(row)


async def claim_recording(session: AsyncSession, run_id: UUID) -> Declared | None:
    """The run's declaration, once, when it is both submitted and completed: the row is
    marked recorded in the same statement, so a redelivered event records nothing twice."""
    row = (
        await session.execute(
            sa.update(declared_io)
            .where(
                declared_io.c.run_id == run_id,
                declared_io.c.submitted,
                declared_io.c.completed,
                sa.not_(declared_io.c.recorded),
            )
            .values(recorded=True)
            .returning(
                declared_io.c.tenant_id,
                declared_io.c.job_name,
                declared_io.c.job_type,
                declared_io.c.sources,
                declared_io.c.targets,
            )
        )
    ).first()
    return None if row is None else _declared(row)


def _declared(row: Any) -> Declared:
    return Declared(
        tenant_id=row.tenant_id,
        job_name=row.job_name or row.job_type or "unnamed",
        sources=list(row.sources or []),
        targets=list(row.targets or []),
    )
