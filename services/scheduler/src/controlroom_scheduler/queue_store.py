"""Reads of the queue: what admission counts and chooses from, what the sweeper checks, and
cancellations that arrived before their run (the tables are declared in ``store``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.api import RunStatus
from controlroom_scheduler.admission import Candidate
from controlroom_scheduler.store import Reader, pending_cancellations, runs

# -- admission -----------------------------------------------------------------------------
ADMISSION_LOCK = 0x636F6E74726F6C  # one key: admission passes of every replica take turns

_USAGE = sa.text(
    f"""
    SELECT tenant_id, lane, executor_kind, status, count(*) AS n
    FROM {runs.fullname}
    WHERE status IN ('queued', 'dispatched', 'running') AND executor_kind IS NOT NULL
    GROUP BY tenant_id, lane, executor_kind, status
    """
)


@dataclass(frozen=True)
class UsageRow:
    tenant_id: str
    lane: str
    executor_kind: str
    status: RunStatus
    n: int


async def take_admission_lock(session: AsyncSession) -> None:
    """Serialises admission passes across replicas until this transaction ends: counting what
    is in use and dispatching against it must not interleave, or two could fill one slot."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMISSION_LOCK})


async def usage(session: Reader) -> list[UsageRow]:
    return [
        UsageRow(r.tenant_id, r.lane, r.executor_kind, RunStatus(r.status), r.n)
        for r in await session.execute(_USAGE)
    ]


# The best few of each tenant's lanes (at most what the tenant could take now), aged priority
# first as admission orders them; the rest of the queue is not read. Per executor kind too: a
# lane whose first runs wait for a full kind must not hide the runs of a free kind behind them.
_CANDIDATES = sa.text(
    f"""
    SELECT run_id, tenant_id, lane, priority, eligible_at, executor_kind
    FROM (
        SELECT r.run_id, r.tenant_id, r.lane, r.priority, r.eligible_at, r.executor_kind,
               row_number() OVER (
                   PARTITION BY r.tenant_id, r.lane, r.executor_kind
                   ORDER BY greatest(1, r.priority - floor(
                                extract(epoch FROM now() - r.eligible_at) / :aging)),
                            r.eligible_at, r.run_id
               ) AS place,
               f.free
        FROM {runs.fullname} AS r
        JOIN unnest(:tenants, :free) AS f(tenant_id, free) ON f.tenant_id = r.tenant_id
        WHERE r.status = 'queued' AND r.eligible_at <= now() AND r.job IS NOT NULL
          AND r.cancel_requested_at IS NULL AND r.executor_kind IS NOT NULL
    ) AS ranked
    WHERE place <= free
    """
).bindparams(
    sa.bindparam("tenants", type_=ARRAY(sa.Text)),
    sa.bindparam("free", type_=ARRAY(sa.Integer)),
    sa.bindparam("aging", type_=sa.Float),
)


async def candidates(
    session: AsyncSession, free_by_tenant: dict[str, int], aging_seconds: float
) -> list[Candidate]:
    if not free_by_tenant:
        return []
    result = await session.execute(
        _CANDIDATES,
        {
            "tenants": list(free_by_tenant),
            "free": list(free_by_tenant.values()),
            "aging": aging_seconds,
        },
    )
    return [
        Candidate(r.run_id, r.tenant_id, r.lane, r.priority, r.eligible_at, r.executor_kind)
        for r in result
    ]


async def queued_of_tenant(session: Reader, tenant_id: str) -> list[Candidate]:
    result = await session.execute(
        sa.select(
            runs.c.run_id,
            runs.c.tenant_id,
            runs.c.lane,
            runs.c.priority,
            runs.c.eligible_at,
            runs.c.executor_kind,
        ).where(
            runs.c.tenant_id == tenant_id,
            runs.c.status == RunStatus.queued.value,
            runs.c.executor_kind.is_not(None),
        )
    )
    return [
        Candidate(r.run_id, r.tenant_id, r.lane, r.priority, r.eligible_at, r.executor_kind)
        for r in result
    ]


# -- sweeping --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveAttempt:
    run_id: UUID
    tenant_id: str
    attempt: int
    status: RunStatus
    executor_id: str | None
    started_at: datetime | None
    deadline: datetime | None
    cancel_requested_at: datetime | None


async def active_attempts(
    session: Reader, now: datetime, cancel_grace: float
) -> list[ActiveAttempt]:
    """What the clock may have something to say about: running attempts (their executors'
    liveness), and dispatched ones past their deadline or their cancellation's grace (a
    backlog of dispatched runs waiting for an executor is not read every second)."""
    r = runs.c
    grace_ended = r.cancel_requested_at <= now - timedelta(seconds=cancel_grace)
    result = await session.execute(
        sa.select(
            r.run_id,
            r.tenant_id,
            r.attempt,
            r.status,
            r.executor_id,
            r.started_at,
            r.deadline,
            r.cancel_requested_at,
        ).where(
            sa.or_(
                r.status == RunStatus.running.value,
                sa.and_(
                    r.status == RunStatus.dispatched.value,
                    sa.or_(r.deadline <= now, grace_ended),
                ),
            )
        )
    )
    return [
        ActiveAttempt(
            row.run_id,
            row.tenant_id,
            row.attempt,
            RunStatus(row.status),
            row.executor_id,
            row.started_at,
            row.deadline,
            row.cancel_requested_at,
        )
        for row in result
    ]


# -- cancellations that overtook their submission -----------------------------------------
async def remember_cancellations(
    session: AsyncSession, early: Sequence[tuple[UUID, str, str, datetime]]
) -> None:
    """(run_id, tenant_id, requested_by, requested_at) of runs not known yet."""
    await session.execute(
        insert(pending_cancellations).on_conflict_do_nothing(),
        [
            {"run_id": r, "tenant_id": t, "requested_by": by, "requested_at": at}
            for r, t, by, at in early
        ],
    )


_TAKE_CANCELLATIONS = sa.text(
    f"""
    DELETE FROM {pending_cancellations.fullname} WHERE run_id = ANY(:run_ids)
    RETURNING run_id, tenant_id, requested_by, requested_at
    """
).bindparams(sa.bindparam("run_ids", type_=ARRAY(sa.Uuid)))
"""The same SQL for any batch (an IN list of the batch's size compiled anew every intake)."""


async def take_cancellations(
    session: AsyncSession, run_ids: Sequence[UUID]
) -> list[tuple[UUID, str, str, datetime]]:
    """The pending cancellations of these runs, removed as they are taken."""
    result = await session.execute(_TAKE_CANCELLATIONS, {"run_ids": list(run_ids)})
    return [(r.run_id, r.tenant_id, r.requested_by, r.requested_at) for r in result]
