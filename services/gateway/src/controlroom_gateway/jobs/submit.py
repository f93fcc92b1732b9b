"""Submitting a job: check it, then queue its run, once per Idempotency-Key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from controlroom_contracts.api import JobRequest
from controlroom_contracts.events import JobSubmitted
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import IdempotencyConflict
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs import event_size, idempotency, job_checks
from controlroom_gateway.jobs.submissions import submission_message
from controlroom_gateway.read_model import run_jobs, submitted_runs
from controlroom_gateway.runs import sessions
from controlroom_runtime.outbox import OutgoingMessage
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    run_id: UUID
    created_at: datetime
    replayed: bool
    """True when an earlier submission with the same Idempotency-Key is returned."""


async def submit_job(
    gateway: Gateway, principal: Principal, body: Any, *, idempotency_key: str | None
) -> Submission:
    """Queue the run of ``body`` (JSON, checked here: every problem of it in one 422); the same
    ``idempotency_key`` and body within the key's lifetime replay the first submission."""
    job = await job_checks.acceptable_job(body, gateway.limits, gateway.callback_policy)
    key = None
    if idempotency_key is not None:
        lifetime = timedelta(hours=gateway.settings.idempotency_key_ttl_hours)
        key = idempotency.IdempotencyKey(idempotency_key, lifetime)
    return await queue_job(gateway, principal, job, key)


async def accept_job(
    gateway: Gateway,
    principal: Principal,
    job: JobRequest,
    idempotency_key: idempotency.IdempotencyKey | None = None,
) -> Submission:
    """Check a job and queue its run (running a template)."""
    job_checks.refuse(await job_checks.job_problems(job, gateway.limits, gateway.callback_policy))
    return await queue_job(gateway, principal, job, idempotency_key)


async def queue_job(
    gateway: Gateway,
    principal: Principal,
    job: JobRequest,
    idempotency_key: idempotency.IdempotencyKey | None,
) -> Submission:
    """Queue the run of a checked job."""
    runtime = gateway.runtime
    if job.session_id is not None:
        async with runtime.autocommit.connect() as connection:
            await sessions.require_session(connection, principal.tenant_id, job.session_id)
    event = new_submission(job, principal)
    # Serialised once, here in the request's task (so it carries the request's trace): the
    # size check and the outbox take the same bytes.
    message = submission_message(event)
    event_size.ensure_publishable(message, runtime.broker.connection.max_payload, job=job)
    if idempotency_key is None:
        await gateway.submissions.write(event, message)
        submission = Submission(event.run_id, event.occurred_at, replayed=False)
    else:
        # Committed is accepted: the answer does not wait for the stream's ack (the relay
        # publishes what this publish misses, so a NATS outage costs clients no time).
        async with unit_of_work(runtime.sessions, runtime.outbox, await_publish=False) as uow:
            submission = await submit_with_key(uow, event, message, idempotency_key)
    log.info("job submitted", extra={"run_id": str(submission.run_id), "job_type": job.job_type})
    return submission


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
