"""Cancelling a run: a queued run at once, a running one by terminating it (the scheduler acts
on the ``CancelRequested`` emitted here)."""

from __future__ import annotations

import logging
from uuid import UUID

from controlroom_contracts.api import RunStatus
from controlroom_contracts.events import CancelRequested
from controlroom_contracts.responses import RunCancelAccepted
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import RunAlreadyFinished, RunNotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.read_model import store
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


async def cancel_run(gateway: Gateway, principal: Principal, run_id: UUID) -> RunCancelAccepted:
    """Request the run's cancellation; idempotent. A run that already finished otherwise is a
    409; the status answered is the one the run had when asked."""
    runtime = gateway.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox, await_publish=False) as uow:
        current = await request_cancel(uow, run_id, principal)
    return RunCancelAccepted(run_id=run_id, status=current)


async def request_cancel(uow: UnitOfWork, run_id: UUID, principal: Principal) -> RunStatus:
    """Ask for the run to stop; idempotent. A run that already finished otherwise is a 409."""
    row = await store.lock_run(uow.session, run_id, principal.tenant_id)
    if row is None:
        raise RunNotFound(f"run {run_id} not found")
    current = RunStatus(row.status)
    if current is RunStatus.cancelled:
        return current
    if current.is_terminal:
        raise RunAlreadyFinished(f"run {run_id} already {current.value}", run_status=current.value)
    await uow.emit(
        CancelRequested(
            tenant_id=principal.tenant_id, run_id=run_id, requested_by=principal.subject
        )
    )
    log.info("cancel requested", extra={"run_id": str(run_id)})
    return current
