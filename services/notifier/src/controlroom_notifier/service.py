"""Notifier use cases: decide which callback a run's outcome calls, and record it durably."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controlroom_contracts.events import JobSubmitted, RunCancelled, RunCompleted, RunFailed
from controlroom_notifier import store
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Terminal = RunCompleted | RunFailed | RunCancelled


def callback_payload(event: Terminal, job_type: str | None = None) -> dict[str, Any]:
    """The body POSTed to on_complete / on_fail (PRD FR-5 shape, plus the run's details)."""
    body: dict[str, Any] = {"run_id": str(event.run_id), "job_type": job_type}
    if isinstance(event, RunCompleted):
        body |= {"status": "completed", "summary": event.summary, "exit_code": event.exit_code}
    elif isinstance(event, RunFailed):
        body |= {
            "status": "failed",
            "summary": f"run failed ({event.failure_reason.value}): {event.error[:300]}",
            "exit_code": event.exit_code,
            "failure_reason": event.failure_reason.value,
            "error": event.error,
        }
    else:
        body |= {"status": "cancelled", "summary": f"run cancelled: {event.reason}"}
    # The scheduler decides a run's outcome once, after its last attempt: which one it was.
    body["attempt"] = event.attempt
    body["finished_at"] = event.finished_at.isoformat()
    body["artifacts"] = []
    return body


class Notifier:
    def __init__(self, wake: Callable[[], Awaitable[None]]) -> None:
        self._wake = wake

    async def on_job_submitted(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        cb = event.job.callbacks
        if cb is None or not (cb.on_complete or cb.on_fail or cb.on_progress):
            return  # nothing to call back: no row, no lookup
        await store.save_callbacks(
            uow.session,
            run_id=event.run_id,
            tenant_id=event.tenant_id,
            job_type=event.job.job_type,
            on_complete=str(cb.on_complete) if cb.on_complete else None,
            on_fail=str(cb.on_fail) if cb.on_fail else None,
            on_progress=str(cb.on_progress) if cb.on_progress else None,
        )
        await self._schedule(uow, event)

    async def on_terminal(self, uow: UnitOfWork, event: Terminal) -> None:
        payload = callback_payload(event)
        await store.save_outcome(
            uow.session,
            run_id=event.run_id,
            tenant_id=event.tenant_id,
            status=payload["status"],
            payload=payload,
        )
        await self._schedule(uow, event)
        # The tenant's own endpoints get the Standard Webhooks envelope: type, timestamp, data.
        added = await store.add_endpoint_deliveries(
            uow.session,
            tenant_id=event.tenant_id,
            run_id=event.run_id,
            event_type=event.event_type,
            payload={
                "type": event.event_type,
                "timestamp": event.occurred_at.isoformat(),
                "data": payload,
            },
        )
        if added:
            log.info("endpoint deliveries scheduled", extra={"endpoints": added})
            uow.on_commit(self._wake)

    async def _schedule(self, uow: UnitOfWork, event: JobSubmitted | Terminal) -> None:
        """Events arrive in any order: a delivery is added once callbacks and outcome are known."""
        pair = await store.pending_pair(uow.session, event.run_id)
        if pair is None:
            return
        kind, url = (
            ("on_complete", pair.on_complete)
            if pair.status == "completed"
            else ("on_fail", pair.on_fail)
        )
        if url is None:
            return
        payload = dict(pair.payload) | {"job_type": pair.job_type}
        if await store.add_delivery(
            uow.session,
            tenant_id=pair.tenant_id,
            run_id=event.run_id,
            kind=kind,
            url=url,
            payload=payload,
        ):
            log.info("callback scheduled", extra={"kind": kind})
            uow.on_commit(self._wake)
