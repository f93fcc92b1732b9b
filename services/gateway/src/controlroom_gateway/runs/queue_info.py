"""Queued runs explained: why each waits and its place in line, asked of the scheduler.

Both change with every dispatch, so they are not kept in the read model: the scheduler, which
owns the queue, answers for the queued runs of a page when they are read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from controlroom_contracts.api import RunStatus, RunView
from controlroom_contracts.rpc import QueueAnswer, QueueQuery
from controlroom_gateway.errors import GatewayError
from controlroom_gateway.rpc import Asker

log = logging.getLogger(__name__)

QUEUE_INFO_TIMEOUT_SECONDS = 1.0
"""A status read must stay fast when the scheduler is away: it then goes without the queue."""


async def explained(views: Sequence[RunView], tenant_id: str, ask: Asker) -> list[RunView]:
    """The views, queued ones with ``queue_reason`` and ``queue_position``. If the scheduler
    does not answer, the runs are shown without them rather than not at all."""
    queued = [v.run_id for v in views if v.status is RunStatus.queued]
    if not queued:
        return list(views)
    try:
        answer = await ask(
            QueueQuery(tenant_id=tenant_id, run_ids=queued),
            QueueAnswer,
            service="scheduler",
            timeout=QUEUE_INFO_TIMEOUT_SECONDS,
        )
    except GatewayError as exc:
        log.warning("queue positions unavailable", extra={"error": exc.detail})
        return list(views)
    entries = {e.run_id: e for e in answer.entries}
    result = []
    for view in views:
        entry = entries.get(view.run_id)
        if entry is not None and view.status is RunStatus.queued:
            view = view.model_copy(
                update={
                    "queue_reason": entry.reason,
                    "queue_position": entry.position,
                    "next_attempt_at": entry.next_attempt_at or view.next_attempt_at,
                }
            )
        result.append(view)
    return result
