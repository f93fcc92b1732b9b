"""Each run's job as submitted, kept for reading back (the Runboard's run page shows its spec and
code). Written by the projection from ``JobSubmitted``, so runs submitted straight to NATS have
theirs too; deleted with the run by retention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.api import DeclaredLineage, JobRequest, RunJobView
from controlroom_contracts.entities import EntityNameError, declared_entities
from controlroom_contracts.events import JobSubmitted
from controlroom_gateway.read_model.store import SHOWN, run_jobs, runs

_LEFT_OUT = {"callbacks"}


def kept_job(event: JobSubmitted) -> str:
    """The job of ``event`` as kept (JSON text): without its callbacks."""
    return event.job.model_dump_json(exclude=_LEFT_OUT, exclude_none=True)


KEEP_JOBS_SQL = f"""
    INSERT INTO {run_jobs.fullname} (run_id, tenant_id, job)
    SELECT run_id, tenant_id, job::jsonb FROM unnest(:run_id, :tenant_id, :job)
           AS j(run_id, tenant_id, job)
    ON CONFLICT DO NOTHING
"""
"""Also a CTE of the statement that records the gateway's own submissions (``submitted_runs``),
with the same parameters: ``keep_params``."""
_KEEP_JOBS = sa.text(KEEP_JOBS_SQL).bindparams(
    sa.bindparam("run_id", type_=ARRAY(sa.Uuid)),
    sa.bindparam("tenant_id", type_=ARRAY(sa.Text)),
    sa.bindparam("job", type_=ARRAY(sa.Text)),
)


def keep_params(submitted: Sequence[JobSubmitted]) -> dict[str, list[Any]]:
    return {
        "run_id": [event.run_id for event in submitted],
        "tenant_id": [event.tenant_id for event in submitted],
        "job": [kept_job(event) for event in submitted],
    }


async def record_jobs(session: AsyncSession, submitted: Sequence[JobSubmitted]) -> None:
    """Keep the jobs of ``submitted`` runs (one statement); a job already kept stays as it is."""
    await session.execute(_KEEP_JOBS, keep_params(submitted))


async def get_job(session: AsyncSession, tenant_id: str, run_id: UUID) -> RunJobView | None:
    """The run's job, unless the run is unknown, another tenant's, expired, or older than
    this table."""
    stored = (
        await session.execute(
            sa.select(run_jobs.c.job)
            .join(runs, runs.c.run_id == run_jobs.c.run_id)
            .where(run_jobs.c.run_id == run_id, run_jobs.c.tenant_id == tenant_id, SHOWN)
        )
    ).scalar_one_or_none()
    if stored is None:
        return None
    job = JobRequest.model_validate(stored)
    return RunJobView(
        run_id=run_id,
        lineage=_declared_lineage(job),
        **job.model_dump(include=set(RunJobView.model_fields) - {"run_id", "lineage"}),
    )


def _declared_lineage(job: JobRequest) -> DeclaredLineage:
    try:
        sources, targets = declared_entities(job.spec.inputs)
    except EntityNameError:
        # Only a job published straight to NATS gets here (the API refuses bad names): its
        # lineage was dead-lettered, so it has none to show.
        return DeclaredLineage(sources=[], targets=[])
    return DeclaredLineage(sources=sources, targets=targets)
