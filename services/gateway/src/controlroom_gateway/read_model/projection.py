"""The run read model, kept in step with run events a batch at a time.

The projector is the busiest consumer in the system: every run sends it several events.
Applied one at a time, each event cost three statements (lock the run, update it, append its
history) and most of the projector's CPU went into building and running them. Here a batch of
events costs a fixed number of statements, whatever its size:
  1. insert the runs submitted straight to NATS (one multi-row insert),
  2. lock every run the batch touches (one ``SELECT ... FOR UPDATE``),
  3. fold the events onto those rows in stream order, in Python (``advance``),
  4. write back the runs that changed (one ``UPDATE ... FROM unnest``),
  5. append the history, in stream order (one ``INSERT ... SELECT unnest``), and notify the
     live streams of its runs, delivered at commit (one ``pg_notify``, see ``run_notices``).
Artifacts (a few per run) are written as they come, grouped until a deletion needs them in.
One event is a batch of one: there is a single implementation of the projection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
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
    RunRetryScheduled,
    RunStarted,
)
from controlroom_gateway.read_model import history_store, run_jobs, store, submitted_runs
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

RunEvent = (
    RunQueued
    | RunDispatched
    | RunStarted
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunRetryScheduled
)
ReportedEvent = (
    RunProgress
    | RunLog
    | ArtifactReported
    | ArtifactStored
    | ArtifactDeleted
    | ContinueCallbackReceived
)
# Spelled out, not get_args() of the unions: isinstance narrows only with a literal tuple.
_RUN_EVENTS = (
    RunQueued,
    RunDispatched,
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    RunRetryScheduled,
)
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
    """Fold the scheduler's decision ``event`` onto ``run`` (a read-model row, changed in
    place). False when it is already reflected, which changes nothing and is not history.

    Decisions are numbered per run (``sequence``): a newer one sets the run's status; an older
    one arriving late (two scheduler replicas may publish out of order) is history and only
    fills what is still missing."""
    sequence = event.sequence
    if sequence is None:  # a producer from before decisions were numbered
        late = RunStatus(run["status"]).is_terminal
    elif sequence == run["sequence"]:
        return False
    else:
        late = sequence < run["sequence"]
    status, changes, attempt = _decided(run, event)
    if late:
        changes = {k: v for k, v in changes.items() if run[k] is None}
    else:
        changes["status"] = status.value
        if sequence is not None:
            changes["sequence"] = sequence
    run.update(changes)
    if attempt is not None:
        run["attempts"] = _with_attempt(run["attempts"], *attempt)
    return True


def _decided(
    run: dict[str, Any], event: RunEvent
) -> tuple[RunStatus, dict[str, Any], tuple[int, dict[str, Any]] | None]:
    """The status a decision sets, the run fields it changes, and what it says of an attempt."""
    if isinstance(event, RunQueued):
        changes: dict[str, Any] = {
            "queued_at": event.occurred_at,
            "executor_kind": event.executor_kind,
            "attempt": max(run["attempt"], 1),
        }
        for field in ("lane", "priority", "max_attempts", "timeout_seconds", "session_id"):
            if (value := getattr(event, field)) is not None:
                changes[field] = value
        return RunStatus.queued, changes, None
    if isinstance(event, RunDispatched):
        return (
            RunStatus.dispatched,
            {
                "executor_kind": event.executor_kind,
                "attempt": event.attempt,
                "next_attempt_at": None,
            },
            (
                event.attempt,
                {
                    "status": "dispatched",
                    "executor_kind": event.executor_kind,
                    "dispatched_at": event.occurred_at,
                },
            ),
        )
    if isinstance(event, RunStarted):
        started = run["started_at"] or event.occurred_at  # the run's start is its first
        changes = {"started_at": started, "sandboxed": event.sandboxed, "attempt": event.attempt}
        if event.image is not None:  # a scheduler from before images says nothing of it
            changes["image"] = event.image
        return (
            RunStatus.running,
            changes,
            (
                event.attempt,
                {
                    "status": "running",
                    "executor_kind": event.executor_kind,
                    "executor_id": event.executor_id,
                    "started_at": event.occurred_at,
                },
            ),
        )
    if isinstance(event, RunCompleted):
        return (
            RunStatus.completed,
            {
                "completed_at": event.finished_at,
                "exit_code": event.exit_code,
                "attempt": event.attempt,
            },
            (
                event.attempt,
                {
                    "status": "completed",
                    "finished_at": event.finished_at,
                    "exit_code": event.exit_code,
                },
            ),
        )
    if isinstance(event, RunFailed):
        details = {
            "exit_code": event.exit_code,
            "failure_reason": event.failure_reason.value,
            "error": event.error,
        }
        return (
            RunStatus.failed,
            {
                "completed_at": event.finished_at,
                **details,
                "attempt": max(event.attempt, run["attempt"]),
            },
            (event.attempt, {"status": "failed", "finished_at": event.finished_at, **details})
            if event.attempt >= 1
            else None,
        )
    if isinstance(event, RunRetryScheduled):
        return (
            RunStatus.queued,
            {"attempt": event.next_attempt, "next_attempt_at": event.retry_at},
            (
                event.failed_attempt,
                {
                    "status": "failed",
                    "finished_at": event.finished_at,
                    "exit_code": event.exit_code,
                    "failure_reason": event.reason.value,
                    "error": event.error,
                },
            ),
        )
    return (
        RunStatus.cancelled,
        {
            "completed_at": event.finished_at,
            "error": event.reason,
            "attempt": max(event.attempt, run["attempt"]),
        },
        (
            event.attempt,
            {"status": "cancelled", "finished_at": event.finished_at, "error": event.reason},
        ),
    )


def _with_attempt(
    attempts: list[dict[str, Any]], number: int, fields: dict[str, Any]
) -> list[dict[str, Any]]:
    """A new list (the row's old one is compared against): attempt ``number`` merged with the
    fields that are set. A cancellation of a run that never dispatched this attempt adds none.
    """
    known = {a["attempt"]: a for a in attempts}
    if number not in known and fields.get("status") == "cancelled":
        return attempts
    entry = dict(known.get(number, {"attempt": number}))
    entry.update(
        {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in fields.items()
            if v is not None
        }
    )
    known[number] = entry
    return [known[n] for n in sorted(known)]


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
        await submitted_runs.insert_runs(
            session, [submitted_runs.submitted_run(e) for e in submitted]
        )
        await run_jobs.record_jobs(session, submitted)
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
        await history_store.add_run_events(session, history)


async def _add_artifacts(uow: UnitOfWork, pending: list[store.ArtifactRow]) -> None:
    if pending:
        await store.add_artifacts(uow.session, pending)
        pending.clear()
