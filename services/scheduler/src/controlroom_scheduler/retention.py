"""What the scheduler forgets, and when (the runtime's ``retention`` does the deleting).

A run that ended ``CONTROLROOM_RUN_RETENTION_DAYS`` + ``CONTROLROOM_RUN_PURGE_GRACE_DAYS`` ago
is deleted with its attempts: by then the gateway has expired and purged it too, so no one can
ask about it or cancel it. Nothing that could still arrive needs it: a copy of its submission
or of an executor's report is at most 7 days old in JetStream, or 30 as a dead letter, and the
inbox drops duplicates for 35. A cancellation whose run never arrived goes at the same age:
its submission can no longer come.

A run is aged by ``updated_at``, when the scheduler last wrote it: for an ended run, when it
ended (or a later, ignored report about it). A run that has not ended is never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.api import RunStatus
from controlroom_runtime.retention import RetentionRule
from controlroom_runtime.service import ServiceRuntime
from controlroom_scheduler.settings import SchedulerSettings
from controlroom_scheduler.store import attempts, pending_cancellations, runs

# Rendered as literals, the condition of ``ix_runs_ended``: the planner uses a partial index
# only for a query it can prove implies the index's condition, which parameters never do.
_ENDED = runs.c.status.in_(
    sa.bindparam(
        "ended",
        [s.value for s in RunStatus if s.is_terminal],
        expanding=True,
        literal_execute=True,
    )
)


async def _delete_attempts(session: AsyncSession, batch: Sequence[sa.Row[Any]]) -> None:
    await session.execute(
        sa.delete(attempts).where(attempts.c.run_id.in_([row.run_id for row in batch]))
    )


def rules(settings: SchedulerSettings) -> list[RetentionRule]:
    kept_for = timedelta(days=settings.run_retention_days + settings.run_purge_grace_days)
    return [
        RetentionRule(
            "runs", runs, "updated_at", kept_for, where=_ENDED, before_delete=_delete_attempts
        ),
        RetentionRule("pending_cancellations", pending_cancellations, "requested_at", kept_for),
    ]


def install(runtime: ServiceRuntime, settings: SchedulerSettings) -> None:
    for rule in rules(settings):
        runtime.retain(rule)
