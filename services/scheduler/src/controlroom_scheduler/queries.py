"""Answers about the queue: why a run waits and where it stands, and a tenant's caps in use."""

from __future__ import annotations

from controlroom_contracts.base import utc_now
from controlroom_contracts.resources import LaneUsage, LimitsView
from controlroom_contracts.rpc import QueueAnswer, QueueEntry, QueueQuery
from controlroom_scheduler import admission, queue_store, store
from controlroom_scheduler.dispatcher import snapshot
from controlroom_scheduler.liveness import ExecutorBoard
from controlroom_scheduler.service import Scheduler


async def queue_entries(
    session: store.Reader, scheduler: Scheduler, board: ExecutorBoard, query: QueueQuery
) -> QueueAnswer:
    now = utc_now()
    snap = snapshot(await queue_store.usage(session), board, now)
    queued = await queue_store.queued_of_tenant(session, query.tenant_id)
    wanted = set(query.run_ids)
    eligible = {c.run_id: c.eligible_at for c in queued}
    entries = [
        QueueEntry(
            run_id=e.run_id,
            reason=e.reason,
            position=e.position,
            next_attempt_at=eligible[e.run_id] if eligible[e.run_id] > now else None,
        )
        for e in admission.explain(query.tenant_id, queued, snap.usage, scheduler.caps, now)
        if e.run_id in wanted
    ]
    return QueueAnswer(entries=entries)


async def limits(
    session: store.Reader, scheduler: Scheduler, board: ExecutorBoard, tenant_id: str
) -> LimitsView:
    snap = snapshot(await queue_store.usage(session), board, utc_now())
    caps = scheduler.caps
    return LimitsView(
        max_concurrent_runs=caps.tenant(tenant_id),
        running=snap.usage.tenant_active.get(tenant_id, 0),
        queued=snap.queued_by_tenant.get(tenant_id, 0),
        lanes={
            lane: LaneUsage(
                max_concurrent_runs=caps.lane_caps.get(lane),
                running=snap.usage.lane_active.get((tenant_id, lane), 0),
                queued=snap.queued_by_lane.get((tenant_id, lane), 0),
            )
            for lane in scheduler.settings.lanes
        },
    )
