"""The scheduler's tables and queries: runs (the machine's state), and their attempts; the
schedules table (its queries are in ``schedules_store``).

Every statement that handles a batch takes arrays (``unnest``), so its SQL is the same for any
batch size and is prepared once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from controlroom_contracts.api import RunStatus
from controlroom_runtime import set_based
from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_scheduler.machine import Run
from controlroom_scheduler.retries import RetryRule

Reader = AsyncSession | AsyncConnection

metadata = sa.MetaData(schema="scheduler")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

_TS = sa.DateTime(timezone=True)

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
    sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lane", sa.Text, nullable=False, server_default="A"),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="3"),
    sa.Column("session_id", sa.Uuid, nullable=True),
    sa.Column("job", sa.Text, nullable=True, comment="The JobRequest as JSON, for dispatch"),
    sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="600"),
    sa.Column("retry", JSONB, nullable=False, server_default="{}"),
    sa.Column("eligible_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("next_attempt_at", _TS, nullable=True),
    sa.Column("dispatched_at", _TS, nullable=True),
    sa.Column("started_at", _TS, nullable=True),
    sa.Column("executor_id", sa.Text, nullable=True),
    sa.Column("deadline", _TS, nullable=True),
    sa.Column("cancel_requested_at", _TS, nullable=True),
    sa.Column(
        "traceparent", sa.Text, nullable=True, comment="The submission's trace: every decision"
    ),
    sa.Index("ix_runs_tenant_status", "tenant_id", "status"),
    sa.Index(
        "ix_runs_queued",
        "tenant_id",
        "lane",
        "eligible_at",
        postgresql_where=sa.text("status = 'queued'"),
    ),
    sa.Index(
        "ix_runs_active",
        "status",
        postgresql_where=sa.text("status IN ('dispatched', 'running')"),
    ),
    # Retention: ended runs by when they were last written (``retention``).
    sa.Index(
        "ix_runs_ended",
        "updated_at",
        postgresql_where=sa.text("status IN ('completed', 'failed', 'cancelled')"),
    ),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("executor_kind", sa.Text, nullable=False),
    sa.Column("executor_id", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("dispatched_at", _TS, nullable=False),
    sa.Column("started_at", _TS, nullable=True),
    sa.Column("finished_at", _TS, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

# Queries over it are in ``schedules_store``; the table is declared here, with the others, so
# that this metadata is the whole schema the migrations must produce.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("schedule_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=True, comment="null: the latest at each tick"),
    sa.Column("cron", sa.Text, nullable=True),
    sa.Column("interval_seconds", sa.Integer, nullable=True),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("next_fire_at", _TS, nullable=False, comment="The earliest tick not yet fired"),
    sa.Column("last_fired_at", _TS, nullable=True),
    sa.Column("last_run_id", sa.Uuid, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.CheckConstraint(
        "(cron IS NULL) <> (interval_seconds IS NULL)", name="ck_schedules_one_clock"
    ),
    sa.Index("ix_schedules_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_schedules_due", "next_fire_at", postgresql_where=sa.text("NOT paused")),
)


pending_cancellations = sa.Table(
    "pending_cancellations",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("requested_at", _TS, nullable=False),
    sa.Index("ix_pending_cancellations_requested", "requested_at"),
    comment="Cancellations of runs not accepted yet: applied when their submission arrives",
)


def retry_rule(stored: dict[str, Any]) -> RetryRule:
    codes = stored.get("retry_on_exit_codes") or []
    return RetryRule(
        **{k: v for k, v in stored.items() if k != "retry_on_exit_codes"},
        retry_on_exit_codes=frozenset(codes),
    )


def retry_json(rule: RetryRule) -> str:
    return json.dumps(
        {
            "max_attempts": rule.max_attempts,
            "backoff_seconds": rule.backoff_seconds,
            "backoff_multiplier": rule.backoff_multiplier,
            "max_backoff_seconds": rule.max_backoff_seconds,
            "retry_on_exit_codes": sorted(rule.retry_on_exit_codes),
            "retry_on_timeout": rule.retry_on_timeout,
        }
    )


@dataclass(frozen=True)
class NewRun:
    run_id: UUID
    tenant_id: str
    job_type: str
    executor_kind: str | None
    status: RunStatus
    attempt: int
    sequence: int
    lane: str
    priority: int
    session_id: UUID | None
    job: str
    timeout_seconds: int
    retry: RetryRule
    eligible_at: datetime
    traceparent: str | None


_NEW_RUN_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "run_id": sa.Uuid(),
    "tenant_id": sa.Text(),
    "job_type": sa.Text(),
    "executor_kind": sa.Text(),
    "status": sa.Text(),
    "attempt": sa.Integer(),
    "sequence": sa.Integer(),
    "lane": sa.Text(),
    "priority": sa.SmallInteger(),
    "session_id": sa.Uuid(),
    "job": sa.Text(),
    "timeout_seconds": sa.Integer(),
    "retry": sa.Text(),
    "eligible_at": _TS,
    "traceparent": sa.Text(),
}
_COLS = ", ".join(_NEW_RUN_COLUMNS)
_INSERT_RUNS = sa.text(
    f"""
    INSERT INTO {runs.fullname} ({_COLS})
    SELECT {_COLS.replace("retry", "retry::jsonb")}
    FROM unnest({", ".join(f":{c}" for c in _NEW_RUN_COLUMNS)}) AS r({_COLS})
    ON CONFLICT DO NOTHING
    RETURNING run_id
    """
).bindparams(*(sa.bindparam(c, type_=ARRAY(t)) for c, t in _NEW_RUN_COLUMNS.items()))


async def insert_runs(session: AsyncSession, new: Sequence[NewRun]) -> set[UUID]:
    """Insert new runs in one statement; the ids of those inserted (a run id already known,
    or twice in the batch, is inserted once)."""
    params: dict[str, list[Any]] = {c: [] for c in _NEW_RUN_COLUMNS}
    for r in new:
        for c in _NEW_RUN_COLUMNS:
            value = getattr(r, c)
            if c == "retry":
                value = retry_json(value)
            elif c == "status":
                value = value.value
            params[c].append(value)
    return set((await session.execute(_INSERT_RUNS, params)).scalars())


# -- the machine's state: locked, folded, written back -------------------------------------
_STATE_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "status": sa.Text(),
    "attempt": sa.Integer(),
    "sequence": sa.Integer(),
    "next_attempt_at": _TS,
    "eligible_at": _TS,
    "dispatched_at": _TS,
    "started_at": _TS,
    "executor_id": sa.Text(),
    "deadline": _TS,
    "cancel_requested_at": _TS,
}

_LOCK_RUNS = set_based.lock_rows(
    runs,
    "run_id",
    [
        "tenant_id",
        "executor_kind",
        "timeout_seconds",
        "retry",
        "job",
        "traceparent",
        *_STATE_COLUMNS,
    ],
)
_WRITE_RUNS = set_based.update_rows(
    runs,
    "run_id",
    _STATE_COLUMNS,
    also="updated_at = now(), ignored_events = t.ignored_events + u.ignored",
    extra={"ignored": sa.Integer()},
)


@dataclass
class Locked:
    """A run locked for this transaction, as the machine sees it, and its eligibility time."""

    run: Run
    eligible_at: datetime
    job: str | None
    traceparent: str | None
    ignored: int = 0


async def lock_runs(session: AsyncSession, run_ids: Iterable[UUID]) -> dict[UUID, Locked]:
    result = await session.execute(_LOCK_RUNS, {"keys": list(set(run_ids))})
    locked: dict[UUID, Locked] = {}
    for row in result:
        if row.executor_kind is None:
            continue  # never routed: failed at intake, nothing to decide
        run = Run(
            run_id=row.run_id,
            tenant_id=row.tenant_id,
            status=RunStatus(row.status),
            attempt=row.attempt,
            executor_kind=row.executor_kind,
            timeout_seconds=row.timeout_seconds,
            retry=retry_rule(row.retry),
            sequence=row.sequence,
            next_attempt_at=row.next_attempt_at,
            dispatched_at=row.dispatched_at,
            started_at=row.started_at,
            executor_id=row.executor_id,
            deadline=row.deadline,
            cancel_requested_at=row.cancel_requested_at,
        )
        locked[row.run_id] = Locked(run, row.eligible_at, row.job, row.traceparent)
    return locked


async def write_runs(session: AsyncSession, changed: Sequence[Locked]) -> None:
    """Write back locked runs that changed (one statement for all)."""
    params: dict[str, list[Any]] = {c: [] for c in ("run_id", "ignored", *_STATE_COLUMNS)}
    for item in changed:
        run = item.run
        params["run_id"].append(run.run_id)
        params["ignored"].append(item.ignored)
        params["status"].append(run.status.value)
        params["eligible_at"].append(item.eligible_at)
        for c in _STATE_COLUMNS:
            if c not in ("status", "eligible_at"):
                params[c].append(getattr(run, c))
    await session.execute(_WRITE_RUNS, params)


# -- attempts ------------------------------------------------------------------------------
_ATTEMPT_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "run_id": sa.Uuid(),
    "attempt": sa.Integer(),
    "tenant_id": sa.Text(),
    "executor_kind": sa.Text(),
    "executor_id": sa.Text(),
    "status": sa.Text(),
    "dispatched_at": _TS,
    "started_at": _TS,
    "finished_at": _TS,
    "exit_code": sa.Integer(),
    "failure_reason": sa.Text(),
    "error": sa.Text(),
}
_A = ", ".join(_ATTEMPT_COLUMNS)
_A_BINDS = [sa.bindparam(c, type_=ARRAY(t)) for c, t in _ATTEMPT_COLUMNS.items()]
# No ON CONFLICT: a second dispatch of one attempt is a bug, and must fail its transaction.
_INSERT_ATTEMPTS = sa.text(
    f"""
    INSERT INTO {attempts.fullname} ({_A})
    SELECT * FROM unnest({", ".join(f":{c}" for c in _ATTEMPT_COLUMNS)})
    """
).bindparams(*_A_BINDS)
_UPDATE_ATTEMPTS = sa.text(
    f"""
    UPDATE {attempts.fullname} AS a SET
        status = u.status,
        executor_id = coalesce(u.executor_id, a.executor_id),
        started_at = coalesce(u.started_at, a.started_at),
        finished_at = coalesce(u.finished_at, a.finished_at),
        exit_code = coalesce(u.exit_code, a.exit_code),
        failure_reason = coalesce(u.failure_reason, a.failure_reason),
        error = coalesce(u.error, a.error)
    FROM unnest({", ".join(f":{c}" for c in _ATTEMPT_COLUMNS)}) AS u({_A})
    WHERE a.run_id = u.run_id AND a.attempt = u.attempt
    """
).bindparams(*_A_BINDS)


def _attempt_params(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [row.get(c) for row in rows] for c in _ATTEMPT_COLUMNS}


async def insert_attempts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await session.execute(_INSERT_ATTEMPTS, _attempt_params(rows))


async def update_attempts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await session.execute(_UPDATE_ATTEMPTS, _attempt_params(rows))
