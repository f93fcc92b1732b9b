"""Inputs applied to stored runs through the state machine, a batch at a time.

A fixed number of statements whatever the batch's size: lock every run the batch names (in
run-id order), fold the inputs onto them in order with ``machine.transition``, write back the
runs that changed, record their attempts, and stage every decision in the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from controlroom_contracts.api import RunStatus
from controlroom_contracts.events import (
    Decision,
    RunCancelled,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunRetryScheduled,
    RunStarted,
)
from controlroom_runtime.metrics import Metrics
from controlroom_runtime.tracing import continuing
from controlroom_runtime.unit_of_work import UnitOfWork
from controlroom_scheduler import queue_store, store
from controlroom_scheduler.machine import CancelRequested, Input, Timing, transition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Addressed:
    """An input for one run of one tenant (a tenant never reaches another's run)."""

    run_id: UUID
    tenant_id: str
    input: Input


@dataclass(frozen=True)
class Applied:
    decisions: list[Decision]
    runs: dict[UUID, store.Locked]

    @property
    def frees_a_slot(self) -> bool:
        """A decision that ends an attempt: admission may have room again."""
        ending = (RunCompleted, RunFailed, RunCancelled, RunRetryScheduled)
        return any(isinstance(d, ending) for d in self.decisions)


async def apply(
    uow: UnitOfWork, inputs: Sequence[Addressed], timing: Timing, metrics: Metrics
) -> Applied:
    session = uow.session
    locked = await store.lock_runs(session, (i.run_id for i in inputs))
    before = {run_id: item.run for run_id, item in locked.items()}
    decisions: list[Decision] = []
    early: list[tuple[UUID, str, str, datetime]] = []
    for item in inputs:
        held = locked.get(item.run_id)
        if held is None and isinstance(item.input, CancelRequested):
            # The cancellation overtook the submission (another consumer): kept, and applied
            # when the run is accepted.
            early.append((item.run_id, item.tenant_id, item.input.requested_by, item.input.now))
            continue
        if held is None or held.run.tenant_id != item.tenant_id:
            metrics.ignored_transitions(_name(item.input)).inc()
            log.info("input for an unknown run ignored", extra={"run_id": str(item.run_id)})
            continue
        outcome = transition(held.run, item.input, timing)
        if outcome.ignored is not None:
            held.ignored += 1
            metrics.ignored_transitions(_name(item.input)).inc()
            log.info(
                "invalid transition ignored",
                extra={
                    "run_id": str(item.run_id),
                    "input": _name(item.input),
                    "why": outcome.ignored,
                },
            )
            continue
        held.run = outcome.run
        for decision in outcome.decisions:
            if isinstance(decision, RunRetryScheduled):
                held.eligible_at = decision.retry_at
            decisions.append(decision)
    if early:
        await queue_store.remember_cancellations(session, early)
    changed = [i for run_id, i in locked.items() if i.run != before[run_id] or i.ignored]
    if changed:
        await store.write_runs(session, changed)
    dispatched = [_attempt_row(d) for d in decisions if isinstance(d, RunDispatched)]
    # One row per attempt: an UPDATE ... FROM with two source rows for one target row applies
    # either, and a batch may hold an attempt's start and its end.
    merged: dict[tuple[UUID, int], dict[str, Any]] = {}
    for d in decisions:
        if (row := _attempt_update(d)) is not None:
            into = merged.setdefault((row["run_id"], row["attempt"]), {})
            into.update({k: v for k, v in row.items() if v is not None})
    updated = list(merged.values())
    if dispatched:
        await store.insert_attempts(session, dispatched)
    if updated:
        await store.update_attempts(session, updated)
    for decision in decisions:
        with continuing(locked[decision.run_id].traceparent):  # one run is one trace
            await uow.emit(decision)
        log.info(
            "run decision",
            extra={
                "run_id": str(decision.run_id),
                "decision": type(decision).__name__,
                "sequence": decision.sequence,
            },
        )
    return Applied(decisions, locked)


def _name(event: Input) -> str:
    return type(event).__name__.lower()


def _attempt_row(d: RunDispatched) -> dict[str, Any]:
    return {
        "run_id": d.run_id,
        "attempt": d.attempt,
        "tenant_id": d.tenant_id,
        "executor_kind": d.executor_kind,
        "status": RunStatus.dispatched.value,
        "dispatched_at": d.occurred_at,
    }


def _attempt_update(d: Decision) -> dict[str, Any] | None:
    """What a decision records about the attempt it concerns (None: no attempt of its own)."""
    row: dict[str, Any] = {"run_id": d.run_id}
    if isinstance(d, RunStarted):
        row |= {
            "attempt": d.attempt,
            "status": RunStatus.running.value,
            "executor_id": d.executor_id,
            "started_at": d.occurred_at,
        }
    elif isinstance(d, RunCompleted):
        row |= {
            "attempt": d.attempt,
            "status": RunStatus.completed.value,
            "finished_at": d.finished_at,
            "exit_code": d.exit_code,
        }
    elif isinstance(d, RunFailed):
        row |= {
            "attempt": d.attempt,
            "status": RunStatus.failed.value,
            "finished_at": d.finished_at,
            "exit_code": d.exit_code,
            "failure_reason": d.failure_reason.value,
            "error": d.error,
        }
    elif isinstance(d, RunRetryScheduled):
        row |= {
            "attempt": d.failed_attempt,
            "status": RunStatus.failed.value,
            "finished_at": d.finished_at,
            "exit_code": d.exit_code,
            "failure_reason": d.reason.value,
            "error": d.error,
        }
    elif isinstance(d, RunCancelled):
        # A run cancelled while queued has no row for this attempt: the update finds none.
        row |= {
            "attempt": d.attempt,
            "status": RunStatus.cancelled.value,
            "finished_at": d.finished_at,
            "error": d.reason,
        }
    else:
        return None
    return row
