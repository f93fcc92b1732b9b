"""The run read model, kept in step with run events a batch at a time.

The projector is the busiest consumer in the system: every run sends it several events.
Applied one at a time, each event cost three statements (lock the run, update it, append its
history) and most of the projector's CPU went into building and running them. Here a batch of
events costs a fixed number of statements, whatever its size:
  1. insert the runs submitted straight to NATS (one multi-row insert),
  2. lock every run the batch touches (one ``SELECT ... FOR UPDATE``),
  3. fold the events onto those rows in stream order, in Python (``advance``),
  4. write back the runs that changed (one ``UPDATE ... FROM unnest``),
  5. append the history, in stream order (one ``INSERT ... SELECT unnest``).
Artifacts (a few per run) are written as they come, grouped until a deletion needs them in.
One event is a batch of one: there is a single implementation of the projection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from controlroom_contracts.api import RunStatus
from controlroom_contracts.base import Message
from controlroom_contracts.events import (
    ArtifactDeleted,
    ArtifactReported,
    ArtifactStored,
    ContinueCallbackReceived,
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunLog,
    RunProgress,
    RunQueued,
    RunStarted,
)
from controlroom_gateway import store
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

RunEvent = RunQueued | RunDispatched | RunStarted | RunCompleted | RunFailed | RunCancelled
ReportedEvent = (
    RunProgress
    | RunLog
    | ArtifactReported
    | ArtifactStored
    | ArtifactDeleted
    | ContinueCallbackReceived
)
# Spelled out, not get_args() of the unions: isinstance narrows only with a literal tuple.
_RUN_EVENTS = (RunQueued, RunDispatched, RunStarted, RunCompleted, RunFailed, RunCancelled)
_REPORTED_EVENTS = (
    RunProgress,
    RunLog,
    ArtifactReported,
    ArtifactStored,
    ArtifactDeleted,
    ContinueCallbackReceived,
)

_ENVELOPE = {"event_id", "occurred_at", "schema_version", "tenant_id", "run_id", "event_type"}


def history_type(event_type: str) -> str:
    """``run.started`` -> ``started``; both artifact events -> ``artifact`` (PRD FR-4 names)."""
    if event_type == "run.artifact_deleted":
        return "artifact_deleted"
    if event_type.startswith("run.artifact"):
        return "artifact"
    return event_type.removeprefix("run.")


def advance(run: dict[str, Any], event: RunEvent) -> bool:
    """Fold ``event`` onto ``run`` (a read-model row, changed in place). Status only moves
    forward; False when the event is an older attempt's, which changes nothing and is not
    history."""
    current = RunStatus(run["status"])
    attempt: int = getattr(event, "attempt", run["attempt"])  # RunQueued has none
    if attempt < run["attempt"]:
        return False  # fencing: an older attempt's report changes nothing
    changes: dict[str, Any] = {}
    target = current
    if isinstance(event, RunQueued):
        target = RunStatus.queued
        changes |= {"queued_at": event.occurred_at, "executor_kind": event.executor_kind}
    elif isinstance(event, RunDispatched):
        target = RunStatus.dispatched
        changes |= {"executor_kind": event.executor_kind}
    elif isinstance(event, RunStarted):
        target = RunStatus.running
        changes |= {"started_at": event.occurred_at, "sandboxed": event.sandboxed}
    elif isinstance(event, RunCompleted):
        target = RunStatus.completed
        changes |= {"completed_at": event.finished_at, "exit_code": event.exit_code}
    elif isinstance(event, RunFailed):
        target = RunStatus.failed
        changes |= {
            "completed_at": event.finished_at,
            "exit_code": event.exit_code,
            "failure_reason": event.failure_reason.value,
            "error": event.error,
        }
    elif isinstance(event, RunCancelled):
        target = RunStatus.cancelled
        changes |= {"completed_at": event.finished_at, "error": event.reason}
    if current.is_terminal or target.rank < current.rank:
        # Late but still informative (RunStarted after RunCompleted): fill what is missing only.
        changes = {k: v for k, v in changes.items() if run[k] is None}
    else:
        changes["status"] = target.value
    if attempt > run["attempt"]:
        changes["attempt"] = attempt
    run.update(changes)
    return True


def _history_row(event: RunEvent | ReportedEvent) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "run_id": event.run_id,
        "event_type": history_type(event.event_type),
        "occurred_at": event.occurred_at,
        "data": event.model_dump_json(exclude=_ENVELOPE),
    }


async def project(uow: UnitOfWork, events: Sequence[Message]) -> None:
    """Apply ``events`` (in stream order) to the read model: runs, artifacts, history."""
    session = uow.session
    submitted = [e for e in events if isinstance(e, JobSubmitted)]
    if submitted:
        await store.insert_runs(session, [store.submitted_run(e) for e in submitted])
    touched = {e.run_id for e in events if isinstance(e, _RUN_EVENTS)}
    runs = await store.lock_runs(session, touched) if touched else {}
    before = {run_id: dict(row) for run_id, row in runs.items()}
    history: list[dict[str, Any]] = []
    artifacts: list[store.ArtifactRow] = []
    for event in events:
        if isinstance(event, _RUN_EVENTS):
            run = runs.get(event.run_id)
            if run is None or run["tenant_id"] != event.tenant_id:
                log.warning(
                    "event for an unknown run ignored",
                    extra={"event_type": event.event_type, "run_id": str(event.run_id)},
                )
                continue
            if not advance(run, event):
                continue
        elif isinstance(event, ArtifactStored):
            if event.storage_key is not None:  # otherwise reported, not stored: history only
                artifacts.append(store.artifact_row(event, event.storage_key))
        elif isinstance(event, ArtifactDeleted):
            # A deletion may follow the artifact's own arrival in this batch.
            await _add_artifacts(uow, artifacts)
            await store.delete_artifact(session, event.artifact_id, event.tenant_id)
        elif not isinstance(event, _REPORTED_EVENTS):
            continue  # JobSubmitted: its run is the history's start, not an entry in it
        history.append(_history_row(event))
    await _add_artifacts(uow, artifacts)
    changed = [run for run_id, run in runs.items() if run != before[run_id]]
    if changed:
        await store.write_runs(session, changed)
    if history:
        await store.add_run_events(session, history)


async def _add_artifacts(uow: UnitOfWork, pending: list[store.ArtifactRow]) -> None:
    if pending:
        await store.add_artifacts(uow.session, pending)
        pending.clear()
