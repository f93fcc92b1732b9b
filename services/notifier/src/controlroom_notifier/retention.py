"""What the notifier forgets, and when (the runtime's ``retention`` does the deleting).

Once a run ended ``CONTROLROOM_RUN_RETENTION_DAYS`` + ``CONTROLROOM_RUN_PURGE_GRACE_DAYS``
ago, its outcome goes with its callbacks, and its deliveries go once they are finished,
delivered or failed alike (by then the gateway has purged the run too). A pending delivery is
never deleted: it carries its own payload and is still owed to its receiver. The callbacks of a
run whose end has not been heard stay, as the run has not ended.

Nothing that could still arrive needs them: a copy of the run's submission or end is at most 7
days old in JetStream, or 30 as a dead letter, and the inbox drops duplicates for 35.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.store import callbacks, deliveries, outcomes
from controlroom_runtime.retention import RetentionRule
from controlroom_runtime.service import ServiceRuntime

# Rendered as literals, the condition of ``ix_deliveries_finished_created``: the planner uses a
# partial index only for a query it can prove implies the index's condition.
_FINISHED = deliveries.c.status.in_(
    sa.bindparam("finished", ["delivered", "failed"], expanding=True, literal_execute=True)
)


async def _delete_callbacks(session: AsyncSession, batch: Sequence[sa.Row[Any]]) -> None:
    await session.execute(
        sa.delete(callbacks).where(callbacks.c.run_id.in_([row.run_id for row in batch]))
    )


def rules(settings: NotifierSettings) -> list[RetentionRule]:
    kept_for = timedelta(days=settings.run_retention_days + settings.run_purge_grace_days)
    return [
        RetentionRule(
            "outcomes", outcomes, "recorded_at", kept_for, before_delete=_delete_callbacks
        ),
        RetentionRule("deliveries", deliveries, "created_at", kept_for, where=_FINISHED),
    ]


def install(runtime: ServiceRuntime, settings: NotifierSettings) -> None:
    for rule in rules(settings):
        runtime.retain(rule)
