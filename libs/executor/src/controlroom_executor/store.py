"""An executor's own tables: the attempts it claimed and the cancellations it heard.

Both executor services keep these in their own schema (``executor_tables(metadata)``). The
attempt row, not the dispatch message, is what an executor supervises from: it holds the
dispatch, so a restarted executor can resume an attempt it claimed but had not started.

Retention (``retention_rules``) deletes an attempt once it finished long enough ago, and a
cancellation at the same age: a dispatch is at most 7 days old in JetStream, so none can still
come for them (an attempt older than one claimed here is refused by that row while it lasts).
An attempt that has not finished is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.commands import DispatchRun
from controlroom_executor.backend import AttemptKey
from controlroom_runtime.retention import RetentionRule

CLAIMED = "claimed"
"""Claimed (the dispatch is acked) and not started on the engine yet."""
RUNNING = "running"
UNFINISHED = (CLAIMED, RUNNING)


@dataclass(frozen=True)
class ExecutorTables:
    attempts: sa.Table
    cancellations: sa.Table


def executor_tables(metadata: sa.MetaData) -> ExecutorTables:
    attempts = sa.Table(
        "attempts",
        metadata,
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("executor_id", sa.Text, nullable=False),
        # claimed | running | completed | failed | cancelled
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatch", JSONB, nullable=True),
        sa.Column("handle", sa.Text, nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_attempts_executor_status", "executor_id", "status"),
        sa.Index(
            "ix_attempts_finished",
            "finished_at",
            postgresql_where=sa.text("finished_at IS NOT NULL"),
        ),
    )
    cancellations = sa.Table(
        "cancellations",
        metadata,
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Index("ix_cancellations_requested", "requested_at"),
    )
    return ExecutorTables(attempts, cancellations)


def retention_rules(tables: ExecutorTables, kept_for: timedelta) -> list[RetentionRule]:
    """Attempts that finished ``kept_for`` ago (only a finished attempt has ``finished_at``),
    and cancellations heard as long ago."""
    return [
        RetentionRule("attempts", tables.attempts, "finished_at", kept_for),
        RetentionRule("cancellations", tables.cancellations, "requested_at", kept_for),
    ]


@dataclass(frozen=True)
class UnfinishedAttempt:
    key: AttemptKey
    tenant_id: str
    status: str
    dispatch: DispatchRun | None
    launched_at: datetime | None


class AttemptStore:
    """Queries over one executor's tables, inside the caller's session."""

    def __init__(self, tables: ExecutorTables) -> None:
        self._t = tables

    async def claim(self, session: AsyncSession, command: DispatchRun, executor_id: str) -> bool:
        """The unique (run_id, attempt) row: two executors never run the same attempt. An
        attempt older than one already claimed here is stale (its run was retried) and is
        not claimed either."""
        a = self._t.attempts
        newer = sa.exists().where(a.c.run_id == command.run_id, a.c.attempt > command.attempt)
        values: dict[str, Any] = {
            "run_id": command.run_id,
            "attempt": command.attempt,
            "tenant_id": command.tenant_id,
            "executor_id": executor_id,
            "status": CLAIMED,
            "dispatch": command.model_dump(mode="json"),
        }
        select = sa.select(*[sa.literal(v, a.c[k].type).label(k) for k, v in values.items()])
        result = await session.execute(
            insert(a)
            .from_select(list(values), select.where(~newer))
            .on_conflict_do_nothing()
            .returning(a.c.run_id)
        )
        return result.first() is not None

    async def note_cancellation(self, session: AsyncSession, run_id: UUID, tenant_id: str) -> None:
        await session.execute(
            insert(self._t.cancellations)
            .values(run_id=run_id, tenant_id=tenant_id)
            .on_conflict_do_nothing()
        )

    async def is_cancelled(self, session: AsyncSession, run_id: UUID) -> bool:
        c = self._t.cancellations
        found = await session.execute(sa.select(c.c.run_id).where(c.c.run_id == run_id))
        return found.first() is not None

    async def launched(self, session: AsyncSession, key: AttemptKey, handle: str) -> bool:
        a = self._t.attempts
        result = await session.execute(
            sa.update(a)
            .where(a.c.run_id == key.run_id, a.c.attempt == key.attempt, a.c.status == CLAIMED)
            .values(status=RUNNING, handle=handle, launched_at=sa.func.now())
            .returning(a.c.run_id)
        )
        return result.first() is not None

    async def finish(
        self, session: AsyncSession, key: AttemptKey, status: str, exit_code: int | None
    ) -> bool:
        """Mark the attempt finished; False when it already was (its report is out)."""
        a = self._t.attempts
        result = await session.execute(
            sa.update(a)
            .where(
                a.c.run_id == key.run_id,
                a.c.attempt == key.attempt,
                a.c.status.in_(UNFINISHED),
            )
            .values(status=status, exit_code=exit_code, finished_at=sa.func.now())
            .returning(a.c.run_id)
        )
        return result.first() is not None

    async def unfinished(self, session: AsyncSession, executor_id: str) -> list[UnfinishedAttempt]:
        a = self._t.attempts
        rows = await session.execute(
            sa.select(
                a.c.run_id, a.c.attempt, a.c.tenant_id, a.c.status, a.c.dispatch, a.c.launched_at
            ).where(a.c.executor_id == executor_id, a.c.status.in_(UNFINISHED))
        )
        return [
            UnfinishedAttempt(
                key=AttemptKey(r.run_id, r.attempt),
                tenant_id=r.tenant_id,
                status=r.status,
                dispatch=None if r.dispatch is None else DispatchRun.model_validate(r.dispatch),
                launched_at=r.launched_at,
            )
            for r in rows
        ]
