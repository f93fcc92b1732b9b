"""Submitted runs into the read model: the gateway's own (with their outbox rows, in one
statement) and those submitted straight to NATS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from controlroom_contracts.api import RunStatus
from controlroom_contracts.events import JobSubmitted
from controlroom_gateway.read_model import run_jobs
from controlroom_gateway.read_model.store import outbox, runs
from controlroom_runtime.outbox import OutgoingMessage, staging_binds, staging_params, staging_sql


def submitted_run(event: JobSubmitted) -> dict[str, Any]:
    """The read-model row of a run as it is submitted."""
    return {
        "run_id": event.run_id,
        "tenant_id": event.tenant_id,
        "job_type": event.job.job_type,
        "status": RunStatus.queued.value,
        "created_by": event.job.created_by,
        "submitted_by": event.submitted_by,
        "inputs": dict(event.job.spec.inputs),
        "created_at": event.occurred_at,
        "session_id": event.job.session_id,
        "priority": event.job.priority,
        "schedule_id": event.schedule_id,
        "scheduled_for": event.scheduled_for,
    }


# Without schedule_id and scheduled_for: only the scheduler's ticks carry them, and those reach
# the read model through the projection (``insert_runs``), never through this statement.
_SUBMITTED_RUN_COLUMNS = (
    "run_id",
    "tenant_id",
    "job_type",
    "status",
    "created_by",
    "submitted_by",
    "inputs",
    "created_at",
    "session_id",
    "priority",
)
_RECORD_SUBMISSIONS = sa.text(
    f"""
    WITH new_runs AS (
        INSERT INTO {runs.fullname} ({", ".join(_SUBMITTED_RUN_COLUMNS)})
        SELECT run_id, tenant_id, job_type, status, created_by, submitted_by, inputs::jsonb,
               created_at, session_id, priority
        FROM unnest(:run_id, :tenant_id, :job_type, :status, :created_by, :submitted_by,
                    :inputs, :created_at, :session_id, :priority)
             AS r({", ".join(_SUBMITTED_RUN_COLUMNS)})
        ON CONFLICT DO NOTHING
    ), new_jobs AS ({run_jobs.KEEP_JOBS_SQL})
    {staging_sql(outbox)}
    """
).bindparams(
    sa.bindparam("run_id", type_=ARRAY(sa.Uuid)),
    sa.bindparam("tenant_id", type_=ARRAY(sa.Text)),
    sa.bindparam("job_type", type_=ARRAY(sa.Text)),
    sa.bindparam("status", type_=ARRAY(sa.Text)),
    sa.bindparam("created_by", type_=ARRAY(sa.Text)),
    sa.bindparam("submitted_by", type_=ARRAY(sa.Text)),
    sa.bindparam("inputs", type_=ARRAY(sa.Text)),
    sa.bindparam("created_at", type_=ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("session_id", type_=ARRAY(sa.Uuid)),
    sa.bindparam("priority", type_=ARRAY(sa.SmallInteger)),
    sa.bindparam("job", type_=ARRAY(sa.Text)),
    *staging_binds(),
)


async def record_submissions(
    conn: AsyncConnection, events: Sequence[JobSubmitted], messages: Sequence[OutgoingMessage]
) -> None:
    """Insert submitted runs, their jobs (``run_jobs``) and their outbox rows in *one* statement.

    Run on an autocommit connection it is one round trip to Postgres, where BEGIN, two
    inserts and COMMIT were four. Under load every round trip waits for the other processes
    on the machine, so this is what a submission's latency is made of. The SQL is the same for
    any number of runs (arrays, not a row of parameters per run), so it is prepared once.
    """
    rows = [submitted_run(e) for e in events]
    params: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in _SUBMITTED_RUN_COLUMNS}
    params["inputs"] = [json.dumps(r["inputs"]) for r in rows]
    params |= run_jobs.keep_params(events)
    await conn.execute(_RECORD_SUBMISSIONS, params | staging_params(messages))


async def insert_runs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert runs (one multi-row statement); a run already recorded is left as it is."""
    await session.execute(insert(runs).on_conflict_do_nothing(), rows)
