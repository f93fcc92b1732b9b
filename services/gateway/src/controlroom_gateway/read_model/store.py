"""The gateway's read model of runs, fed by run events, always filtered by tenant."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from controlroom_contracts.api import ArtifactView, AttemptView, RunStatus, RunView
from controlroom_contracts.events import ArtifactStored
from controlroom_runtime import set_based
from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="gateway")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("job_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("submitted_by", sa.Text, nullable=True),
    sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("executor_kind", sa.Text, nullable=True),
    sa.Column("sandboxed", sa.Boolean, nullable=True),
    sa.Column("image", sa.Text, nullable=True, comment="The image its latest attempt ran in"),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("lane", sa.Text, nullable=True),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="3"),
    sa.Column("session_id", sa.Uuid, nullable=True),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("timeout_seconds", sa.Integer, nullable=True),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    # The latest scheduler decision applied (the scheduler numbers each run's decisions).
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts", JSONB, nullable=False, server_default="[]"),
    sa.Column("schedule_id", sa.Uuid, nullable=True),
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "expired_at",
        sa.DateTime(timezone=True),
        nullable=True,
        comment="Past its retention: the API no longer shows it; deleted after a grace",
    ),
    sa.Index("ix_runs_tenant_created", "tenant_id", "created_at"),
    sa.Index(
        "ix_runs_tenant_session",
        "tenant_id",
        "session_id",
        postgresql_where=sa.text("session_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_runs_tenant_schedule",
        "tenant_id",
        "schedule_id",
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    ),
    # Retention (``retention``): runs still shown, by when they ended; expired runs, by when.
    sa.Index(
        "ix_runs_unexpired_completed",
        "completed_at",
        postgresql_where=sa.text("expired_at IS NULL"),
    ),
    sa.Index("ix_runs_expired", "expired_at", postgresql_where=sa.text("expired_at IS NOT NULL")),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_sessions_tenant_created", "tenant_id", "created_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("run_id", sa.Uuid, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_idempotency_keys_created", "created_at"),
)

RUN_CHANGE_EVENT_TYPES = (
    "queued",
    "dispatched",
    "started",
    "retry_scheduled",
    "completed",
    "failed",
    "cancelled",
)
"""History entries that change a run's status: the board's feed."""
RUN_CHANGES_SQL = "(" + ", ".join(f"'{t}'" for t in RUN_CHANGE_EVENT_TYPES) + ")"
"""The same, as SQL: the feed's partial index (migration 0012 spells it out, as it was)."""

run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("run_id", sa.Uuid, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Index("ix_run_events_run_id", "run_id", "id"),
    # The tenant's run changes in order: what the board's live feed reads (``run_feed``).
    sa.Index(
        "ix_run_events_tenant_changes",
        "tenant_id",
        "id",
        postgresql_where=sa.text(f"event_type IN {RUN_CHANGES_SQL}"),
    ),
)


run_jobs = sa.Table(
    "run_jobs",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    # The JobRequest as submitted, without its callbacks (their URLs may carry tokens).
    sa.Column("job", JSONB, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("run_id", sa.Uuid, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("storage_key", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # A deleted artifact stays as a tombstone until its run is purged: the projector may
    # meet the artifact's own ArtifactStored after an admin deleted it, and must not bring it
    # back (its insert does nothing on a row that exists).
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_artifacts_run_id", "run_id"),
)

job_templates = sa.Table(
    "job_templates",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("job", JSONB, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

TERMINAL_EVENT_TYPES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class ArtifactRow:
    id: UUID
    tenant_id: str
    run_id: UUID
    path: str
    size_bytes: int
    checksum: str
    content_type: str
    storage_key: str
    created_at: datetime

    def view(self) -> ArtifactView:
        return ArtifactView(
            id=self.id,
            run_id=self.run_id,
            path=self.path,
            size_bytes=self.size_bytes,
            checksum=self.checksum,
            content_type=self.content_type,
            url=f"/api/v1/artifacts/{self.id}",
            created_at=self.created_at,
        )


def artifact_row(event: ArtifactStored, storage_key: str) -> ArtifactRow:
    """The read-model row of an artifact stored under ``storage_key``."""
    return ArtifactRow(
        id=event.artifact_id,
        tenant_id=event.tenant_id,
        run_id=event.run_id,
        path=event.path,
        size_bytes=event.size_bytes,
        checksum=event.checksum,
        content_type=event.content_type,
        storage_key=storage_key,
        created_at=event.occurred_at,
    )


async def run_artifacts(session: AsyncSession, run_id: UUID, tenant_id: str) -> list[ArtifactRow]:
    """The run's artifacts (not deleted), oldest first; empty for a run not shown."""
    rows = await session.execute(
        sa.select(*(artifacts.c[c] for c in _ARTIFACT_COLUMNS))
        .join(runs, runs.c.run_id == artifacts.c.run_id)
        .where(
            artifacts.c.run_id == run_id,
            artifacts.c.tenant_id == tenant_id,
            artifacts.c.deleted_at.is_(None),
            SHOWN,
        )
        .order_by(artifacts.c.created_at, artifacts.c.path)
    )
    return [ArtifactRow(**row._mapping) for row in rows]


async def add_artifacts(session: AsyncSession, rows: Sequence[ArtifactRow]) -> None:
    """Insert artifacts (one multi-row statement); one already recorded is left as it is."""
    await session.execute(
        insert(artifacts).on_conflict_do_nothing(), [row.__dict__ for row in rows]
    )


SHOWN = runs.c.expired_at.is_(None)
"""A run the API shows: not expired (see ``retention``).

An expired run, its history and its artifacts are a 404, as a run that never existed, not a
410 Gone: so do the systems whose run history expires (Databricks forgets a job run after 60
days and then answers that it does not exist; a DAG run removed by Airflow's ``db clean`` is a
404 from its REST API). A 410 would also hold only until the purge, after which an expired run
cannot be told from an unknown one, so a client could not rely on it anyway."""


async def get_artifact(
    session: AsyncSession, artifact_id: UUID, tenant_id: str
) -> ArtifactRow | None:
    """The artifact, unless it was deleted or its run expired."""
    expired_run = sa.exists().where(
        runs.c.run_id == artifacts.c.run_id, runs.c.expired_at.is_not(None)
    )
    row = (
        await session.execute(
            sa.select(*(artifacts.c[c] for c in _ARTIFACT_COLUMNS)).where(
                artifacts.c.id == artifact_id,
                artifacts.c.tenant_id == tenant_id,
                artifacts.c.deleted_at.is_(None),
                ~expired_run,
            )
        )
    ).first()
    return ArtifactRow(**row._mapping) if row else None


async def delete_artifact(session: AsyncSession, artifact_id: UUID, tenant_id: str) -> None:
    """Leave a tombstone (see ``artifacts.deleted_at``), not a gap the projector could fill."""
    await session.execute(
        sa.update(artifacts)
        .where(
            artifacts.c.id == artifact_id,
            artifacts.c.tenant_id == tenant_id,
            artifacts.c.deleted_at.is_(None),
        )
        .values(deleted_at=sa.func.now())
    )


async def lock_run(session: AsyncSession, run_id: UUID, tenant_id: str) -> sa.Row[Any] | None:
    return (
        await session.execute(
            sa.select(runs)
            .where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id, SHOWN)
            .with_for_update()
        )
    ).first()


_MUTABLE_RUN_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "status": sa.Text(),
    "queued_at": sa.DateTime(timezone=True),
    "started_at": sa.DateTime(timezone=True),
    "completed_at": sa.DateTime(timezone=True),
    "attempt": sa.Integer(),
    "executor_kind": sa.Text(),
    "sandboxed": sa.Boolean(),
    "image": sa.Text(),
    "exit_code": sa.Integer(),
    "failure_reason": sa.Text(),
    "error": sa.Text(),
    "lane": sa.Text(),
    "priority": sa.SmallInteger(),
    "max_attempts": sa.Integer(),
    "timeout_seconds": sa.Integer(),
    "next_attempt_at": sa.DateTime(timezone=True),
    "sequence": sa.Integer(),
    "attempts": sa.Text(),
}
"""What run events change in a run (the rest is fixed when it is submitted); ``attempts`` is
JSON, passed as text."""

_LOCK_RUNS = set_based.lock_rows(runs, "run_id", ["tenant_id", *_MUTABLE_RUN_COLUMNS])
_WRITE_RUNS = set_based.update_rows(
    runs, "run_id", _MUTABLE_RUN_COLUMNS, casts={"attempts": "jsonb"}
)


async def lock_runs(session: AsyncSession, run_ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
    """The runs' tenant and every column run events change, locked for this transaction."""
    result = await session.execute(_LOCK_RUNS, {"keys": list(run_ids)})
    return {row.run_id: dict(row._mapping) for row in result}


async def write_runs(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write back runs read with ``lock_runs`` and changed since (one statement for all)."""
    params = {c: [row[c] for row in rows] for c in ("run_id", *_MUTABLE_RUN_COLUMNS)}
    params["attempts"] = [json.dumps(a) for a in params["attempts"]]
    await session.execute(_WRITE_RUNS, params)


_RUN_COLUMNS = [c.name for c in runs.c]
_ARTIFACT_COLUMNS = [c.name for c in artifacts.c if c.name != "deleted_at"]
_GET_RUN = sa.text(
    f"""
    SELECT {", ".join(f"r.{c}" for c in _RUN_COLUMNS)},
           {", ".join(f"a.{c} AS artifact_{c}" for c in _ARTIFACT_COLUMNS)}
    FROM {runs.fullname} AS r
    LEFT JOIN {artifacts.fullname} AS a
           ON a.run_id = r.run_id AND a.tenant_id = r.tenant_id AND a.deleted_at IS NULL
    WHERE r.run_id = :run_id AND r.tenant_id = :tenant_id AND r.expired_at IS NULL
    ORDER BY a.created_at, a.path
    """
).bindparams(sa.bindparam("run_id", type_=sa.Uuid), sa.bindparam("tenant_id", type_=sa.Text))
"""Built once: the status read is the API's most frequent request, and building a select
per call cost more CPU than running it."""


async def get_run(
    db: AsyncSession | AsyncConnection, run_id: UUID, tenant_id: str
) -> RunView | None:
    """The run with its artifacts, in one query."""
    rows = (await db.execute(_GET_RUN, {"run_id": run_id, "tenant_id": tenant_id})).all()
    if not rows:
        return None
    stored = [
        ArtifactRow(**{c: row._mapping[f"artifact_{c}"] for c in _ARTIFACT_COLUMNS}).view()
        for row in rows
        if row._mapping["artifact_id"] is not None
    ]
    logs = next((a.url for a in stored if a.path == "logs/stdout.log"), None)
    return _view(rows[0], stored, logs)


async def run_state(
    session: AsyncSession, run_id: UUID, tenant_id: str
) -> tuple[RunStatus, int] | None:
    """Just the run's status and attempt: for checks that do not need the whole view."""
    row = (
        await session.execute(
            sa.select(runs.c.status, runs.c.attempt).where(
                runs.c.run_id == run_id, runs.c.tenant_id == tenant_id, SHOWN
            )
        )
    ).first()
    return None if row is None else (RunStatus(row.status), row.attempt)


@dataclass(frozen=True)
class RunFilter:
    status: RunStatus | None = None
    job_type: str | None = None
    created_by: str | None = None
    since: datetime | None = None
    session_id: UUID | None = None
    lane: str | None = None
    schedule_id: UUID | None = None


async def list_runs(
    session: AsyncSession,
    tenant_id: str,
    filters: RunFilter,
    *,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[RunView]:
    """Newest first; keyset pagination on (created_at, run_id) so pages never shift."""
    query = sa.select(runs).where(runs.c.tenant_id == tenant_id, SHOWN, *_matching(filters))
    if after is not None:
        query = query.where(sa.tuple_(runs.c.created_at, runs.c.run_id) < sa.tuple_(*after))
    query = query.order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit)
    return [_view(row) for row in await session.execute(query)]


def _matching(filters: RunFilter) -> list[sa.ColumnElement[bool]]:
    """The conditions of ``filters`` (those given)."""
    wanted = {
        runs.c.status: filters.status.value if filters.status is not None else None,
        runs.c.job_type: filters.job_type,
        runs.c.created_by: filters.created_by,
        runs.c.session_id: filters.session_id,
        runs.c.lane: filters.lane,
        runs.c.schedule_id: filters.schedule_id,
    }
    conditions = [column == value for column, value in wanted.items() if value is not None]
    if filters.since is not None:
        conditions.append(runs.c.created_at >= filters.since)
    return conditions


async def count_runs(session: AsyncSession, tenant_id: str, filters: RunFilter) -> dict[str, int]:
    """How many of the tenant's runs match ``filters``, per status (every status named)."""
    rows = await session.execute(
        sa.select(runs.c.status, sa.func.count())
        .where(runs.c.tenant_id == tenant_id, SHOWN, *_matching(filters))
        .group_by(runs.c.status)
    )
    counts = dict.fromkeys((s.value for s in RunStatus), 0)
    counts.update({status: count for status, count in rows})
    return counts


async def runs_by_id(
    session: AsyncSession, tenant_id: str, run_ids: Sequence[UUID]
) -> dict[UUID, RunView]:
    """The tenant's shown runs among ``run_ids`` (without their artifacts)."""
    rows = await session.execute(
        sa.select(runs).where(runs.c.tenant_id == tenant_id, SHOWN, runs.c.run_id.in_(run_ids))
    )
    return {row.run_id: _view(row) for row in rows}


def _view(
    row: sa.Row[Any], artifacts: list[ArtifactView] | None = None, logs_url: str | None = None
) -> RunView:
    return RunView(
        run_id=row.run_id,
        job_type=row.job_type,
        status=RunStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        attempt=row.attempt,
        executor_kind=row.executor_kind,
        sandboxed=row.sandboxed,
        image=row.image,
        exit_code=row.exit_code,
        failure_reason=row.failure_reason,
        error=row.error,
        artifacts=artifacts or [],
        logs_url=logs_url,
        lane=row.lane,
        priority=row.priority,
        session_id=row.session_id,
        schedule_id=row.schedule_id,
        scheduled_for=row.scheduled_for,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        next_attempt_at=row.next_attempt_at,
        attempts=[AttemptView.model_validate(a) for a in row.attempts],
    )
