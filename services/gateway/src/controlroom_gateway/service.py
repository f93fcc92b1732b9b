"""Gateway use cases: accept a job, cancel a run, take in events and callbacks about runs.

The read model that follows the runs' events is kept in ``projection``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from controlroom_contracts.api import (
    ContinueCallback,
    JobRequest,
    LogEventIn,
    ProgressEventIn,
    RunEventIn,
    RunStatus,
)
from controlroom_contracts.events import (
    ArtifactReported,
    CancelRequested,
    ContinueCallbackReceived,
    JobSubmitted,
    RunLog,
    RunProgress,
)
from controlroom_gateway import event_size, idempotency, run_jobs, store, submitted_runs
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import (
    IdempotencyConflict,
    InvalidJob,
    RunAlreadyFinished,
    RunNotFound,
)
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.outbox import OutgoingMessage, outgoing
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


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


async def receive_continue_callback(
    uow: UnitOfWork, body: ContinueCallback, principal: Principal
) -> None:
    """Record a Continue callback as a run event; the run's status stays the scheduler's."""
    row = await store.lock_run(uow.session, body.run_id, principal.tenant_id)
    if row is None:
        raise RunNotFound(f"run {body.run_id} not found")
    await uow.emit(
        ContinueCallbackReceived(
            tenant_id=principal.tenant_id,
            run_id=body.run_id,
            status=body.status,
            summary=body.summary,
            artifacts=body.artifacts,
            received_from=principal.subject,
        )
    )


async def push_event(
    uow: UnitOfWork, run_id: UUID, principal: Principal, body: RunEventIn, *, max_payload: int
) -> None:
    """An event pushed over REST becomes a run event on NATS (history follows from it);
    one the broker could not take (``max_payload``) is refused."""
    row = await store.lock_run(uow.session, run_id, principal.tenant_id)
    if row is None:
        raise RunNotFound(f"run {run_id} not found")
    common: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "run_id": run_id,
        "attempt": max(row.attempt, 1),
    }
    if body.timestamp is not None:
        common["occurred_at"] = body.timestamp
    event: RunProgress | RunLog | ArtifactReported
    if isinstance(body, ProgressEventIn):
        event = RunProgress(**common, percent=body.data.percent, message=body.data.message)
    elif isinstance(body, LogEventIn):
        event = RunLog(**common, stream=body.data.stream, lines=body.data.lines)
    else:
        event = ArtifactReported(**common, **body.data.model_dump())
    message = outgoing(event, message_id=event.event_id, subject=event.subject)
    event_size.ensure_publishable(message, max_payload)
    await uow.emit_outgoing(message)


class JobLimits:
    def __init__(
        self,
        job_types: Sequence[str],
        max_file_bytes: int,
        max_total_bytes: int,
        *,
        lanes: Sequence[str],
        max_timeout_seconds: int,
    ):
        self.job_types = frozenset(job_types)
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.lanes = tuple(lanes)
        self.max_timeout_seconds = max_timeout_seconds

    def check(self, job: JobRequest) -> None:
        """Refuse what the schema alone cannot: unknown job types and lanes, a timeout over
        the deployment's maximum, oversized code; every such problem at once."""
        found = self.problems(job)
        if found:
            raise InvalidJob(
                "; ".join(summary for summary, _error in found),
                errors=[error for _summary, error in found],
            )

    def problems(self, job: JobRequest) -> list[tuple[str, dict[str, str]]]:
        """Each problem: a sentence for the detail, and its ``errors`` entry."""
        found: list[tuple[str, dict[str, str]]] = []

        def problem(summary: str, field: str, message: str, type_: str) -> None:
            found.append((summary, {"field": field, "message": message, "type": type_}))

        if job.lane is not None and job.lane not in self.lanes:
            problem(
                f"unknown lane {job.lane!r}",
                "body.lane",
                f"must be one of {list(self.lanes)}",
                "unknown_lane",
            )
        if job.timeout_seconds is not None and job.timeout_seconds > self.max_timeout_seconds:
            problem(
                f"timeout_seconds {job.timeout_seconds} is over the maximum "
                f"{self.max_timeout_seconds}",
                "body.timeout_seconds",
                f"must be at most {self.max_timeout_seconds}",
                "too_large",
            )
        if job.job_type not in self.job_types:
            problem(
                f"unknown job_type {job.job_type!r}",
                "body.job_type",
                f"must be one of {sorted(self.job_types)}",
                "unknown_job_type",
            )
        total = 0
        for index, file in enumerate(job.code.files):
            size = len(file.content.encode())
            total += size
            if size > self.max_file_bytes:
                problem(
                    f"code file {file.path!r} is {size} bytes; the limit is {self.max_file_bytes}",
                    f"body.code.files.{index}.content",
                    f"larger than {self.max_file_bytes} bytes",
                    "too_large",
                )
        if total > self.max_total_bytes:
            problem(
                f"code files total {total} bytes; the limit is {self.max_total_bytes}",
                "body.code.files",
                "too large",
                "too_large",
            )
        return found


async def url_problem(policy: CallbackPolicy, url: str, field: str) -> dict[str, str] | None:
    """``{field, message, type}`` when the policy refuses a URL we would call; else None."""
    if problem := await policy.problem(url):
        return {"field": field, "message": problem[1], "type": problem[0]}
    return None


async def callback_problems(job: JobRequest, policy: CallbackPolicy) -> list[dict[str, str]]:
    """``{field, message, type}`` for each callback URL the policy refuses."""
    if job.callbacks is None:
        return []
    errors = []
    for kind in ("on_complete", "on_fail", "on_progress"):
        url = getattr(job.callbacks, kind)
        if url is not None and (
            error := await url_problem(policy, str(url), f"body.callbacks.{kind}")
        ):
            errors.append(error)
    return errors


async def check_callbacks(job: JobRequest, policy: CallbackPolicy) -> None:
    """Refuse callbacks to private, loopback (unless allow-listed), link-local or metadata hosts."""
    if errors := await callback_problems(job, policy):
        raise InvalidJob("; ".join(e["message"] for e in errors), errors=errors)


async def check_job(job: JobRequest, limits: JobLimits, policy: CallbackPolicy) -> None:
    """What a job must pass beyond its schema before it may be queued (or saved as a template)."""
    limits.check(job)
    await check_callbacks(job, policy)


@dataclass(frozen=True)
class Submission:
    run_id: UUID
    created_at: datetime
    replayed: bool
    """True when an earlier submission with the same Idempotency-Key is returned."""


def new_submission(job: JobRequest, principal: Principal) -> JobSubmitted:
    return JobSubmitted(
        tenant_id=principal.tenant_id, run_id=uuid4(), job=job, submitted_by=principal.subject
    )


async def submit_with_key(
    uow: UnitOfWork,
    event: JobSubmitted,
    message: OutgoingMessage,
    key: idempotency.IdempotencyKey,
) -> Submission:
    """Record the run and emit JobSubmitted (``message``, its ``submission_message``), unless
    the key already names a submission (made within the key's lifetime)."""
    prior = await idempotency.reserve(
        uow.session,
        tenant_id=event.tenant_id,
        key=key,
        fingerprint=idempotency.request_fingerprint(event.job),
        run_id=event.run_id,
        created_at=event.occurred_at,
    )
    if prior is not None:
        if not prior.same_body:
            raise IdempotencyConflict(
                f"Idempotency-Key {key.value!r} was used with a different body",
                run_id=str(prior.run_id),
            )
        return Submission(prior.run_id, prior.created_at, replayed=True)
    await submitted_runs.insert_runs(uow.session, [submitted_runs.submitted_run(event)])
    await run_jobs.record_jobs(uow.session, [event])
    await uow.emit_outgoing(message)
    return Submission(event.run_id, event.occurred_at, replayed=False)
