"""A run's life after dispatch, decided by the scheduler alone: retries, timeouts, lost
attempts and cancellation in every state (real nats-server and Postgres; the executor is a
stand-in whose reports the test publishes)."""

from __future__ import annotations

from uuid import UUID

import pytest

from controlroom_contracts import subjects
from controlroom_contracts.api import FailureReason, RetryPolicy
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import (
    AttemptCancelled,
    AttemptCompleted,
    AttemptFailed,
    AttemptStarted,
    CancelRequested,
)
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.pytest_plugin import running
from controlroom_scheduler.app import create_app

from .conftest import Rig

NO_WAIT = RetryPolicy(backoff_seconds=0)


async def _start(rig: Rig, executor: StandInExecutor, run_id: UUID, attempt: int) -> None:
    await rig.decided(subjects.RUN_DISPATCHED, run_id, lambda d: d["attempt"] == attempt)
    executor.hold("t1", run_id, attempt)
    await rig.publish(
        AttemptStarted(
            tenant_id="t1",
            run_id=run_id,
            attempt=attempt,
            executor_kind="docker",
            executor_id=executor.executor_id,
            sandboxed=True,
        )
    )
    await rig.decided(subjects.RUN_STARTED, run_id, lambda d: d["attempt"] == attempt)


async def _fail(
    rig: Rig, run_id: UUID, attempt: int, reason: FailureReason, exit_code: int | None = None
) -> None:
    await rig.publish(
        AttemptFailed(
            tenant_id="t1",
            run_id=run_id,
            attempt=attempt,
            failure_reason=reason,
            exit_code=exit_code,
            error=f"{reason.value} in test",
            finished_at=utc_now(),
        )
    )


async def _complete(rig: Rig, run_id: UUID, attempt: int, summary: str = "ok") -> None:
    await rig.publish(
        AttemptCompleted(
            tenant_id="t1", run_id=run_id, attempt=attempt, summary=summary, finished_at=utc_now()
        )
    )


def _kinds(rig: Rig, run_id: UUID) -> list[str]:
    return [s.subject.rsplit(".", 1)[-1] for s in rig.decisions(run_id)]


async def test_a_lost_attempt_is_retried_and_the_retry_succeeds(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=NO_WAIT)
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        await _fail(rig, event.run_id, 1, FailureReason.lost)
        retry = await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id)
        assert (retry.data["failed_attempt"], retry.data["next_attempt"]) == (1, 2)
        assert retry.data["reason"] == "lost"
        await _start(rig, executor, event.run_id, 2)
        await _complete(rig, event.run_id, 2)
        done = await rig.decided(subjects.RUN_COMPLETED, event.run_id)
        assert done.data["attempt"] == 2
        assert _kinds(rig, event.run_id) == [
            "queued",
            "dispatched",
            "started",
            "retry_scheduled",
            "dispatched",
            "started",
            "completed",
        ]
        dispatches = rig.tap.matching(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(event.run_id)
        )
        assert [d.data["attempt"] for d in dispatches] == [1, 2]


async def test_retries_exhausted_fail_the_run_after_its_last_attempt(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=RetryPolicy(max_attempts=2, backoff_seconds=0))
        await rig.publish(event)
        for attempt in (1, 2):
            await _start(rig, executor, event.run_id, attempt)
            await _fail(rig, event.run_id, attempt, FailureReason.executor_error)
        failed = await rig.decided(subjects.RUN_FAILED, event.run_id)
        assert failed.data["attempt"] == 2 and failed.data["failure_reason"] == "executor_error"
        assert _kinds(rig, event.run_id).count("failed") == 1


@pytest.mark.parametrize(
    ("reason", "exit_code"),
    [(FailureReason.exit_code, 3), (FailureReason.oom, 137), (FailureReason.timeout, None)],
)
async def test_failures_that_are_not_retryable_fail_at_once(
    rig: Rig, executor: StandInExecutor, reason: FailureReason, exit_code: int | None
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=RetryPolicy(retry_on_exit_codes=[4], backoff_seconds=0))
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        await _fail(rig, event.run_id, 1, reason, exit_code)
        failed = await rig.decided(subjects.RUN_FAILED, event.run_id)
        assert failed.data["attempt"] == 1 and failed.data["failure_reason"] == reason.value
        assert "retry_scheduled" not in _kinds(rig, event.run_id)


async def test_a_listed_exit_code_is_retried(rig: Rig, executor: StandInExecutor) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=RetryPolicy(retry_on_exit_codes=[75], backoff_seconds=0))
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        await _fail(rig, event.run_id, 1, FailureReason.exit_code, 75)
        retry = await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id)
        assert retry.data["exit_code"] == 75


async def test_the_scheduler_times_out_an_attempt_whose_executor_never_reports(
    rig: Rig, executor: StandInExecutor
) -> None:
    settings = rig.settings(deadline_grace_seconds=0)
    async with running(create_app(settings)):
        event = rig.submitted(timeout_seconds=1)
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        failed = await rig.decided(subjects.RUN_FAILED, event.run_id, timeout=10)
        assert failed.data["failure_reason"] == "timeout"
        # The executor's late report changes nothing.
        await _complete(rig, event.run_id, 1, summary="late")
        marker = rig.submitted()
        await rig.publish(marker)
        await rig.decided(subjects.RUN_DISPATCHED, marker.run_id)
        assert "completed" not in _kinds(rig, event.run_id)


async def test_a_timeout_is_retried_when_the_policy_says_so(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings(deadline_grace_seconds=0))):
        event = rig.submitted(
            timeout_seconds=1, retry=RetryPolicy(retry_on_timeout=True, backoff_seconds=0)
        )
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        retry = await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id, timeout=10)
        assert retry.data["reason"] == "timeout"


async def test_an_executor_gone_silent_loses_its_attempt_which_is_retried(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings(executor_silence_seconds=1.5))):
        event = rig.submitted(retry=NO_WAIT)
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        executor.silent = True  # as if killed with SIGKILL
        retry = await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id, timeout=10)
        assert retry.data["reason"] == "lost" and "silent" in retry.data["error"]


async def test_an_attempt_its_executor_stops_listing_is_lost(
    rig: Rig, executor: StandInExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from controlroom_scheduler import liveness

    monkeypatch.setattr(liveness, "LISTING_MARGIN", timedelta(seconds=0.2))
    # The stand-in beats every 0.5 s, so it is never silent: only the listing can lose it.
    async with running(create_app(rig.settings(executor_silence_seconds=1.5))):
        event = rig.submitted(retry=NO_WAIT)
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        executor.release(event.run_id, 1)  # restarted with no memory of it
        retry = await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id, timeout=10)
        assert "no longer holds" in retry.data["error"]


async def test_cancel_of_a_queued_run_is_immediate(rig: Rig) -> None:
    async with running(create_app(rig.settings())):  # no executor: the run stays queued
        event = rig.submitted()
        await rig.publish(event)
        await rig.decided(subjects.RUN_QUEUED, event.run_id)
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        cancelled = await rig.decided(subjects.RUN_CANCELLED, event.run_id)
        assert "while queued" in cancelled.data["reason"]


async def test_cancel_of_a_run_waiting_for_its_retry_is_immediate(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=RetryPolicy(backoff_seconds=3600, max_backoff_seconds=3600))
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        await _fail(rig, event.run_id, 1, FailureReason.lost)
        await rig.decided(subjects.RUN_RETRY_SCHEDULED, event.run_id)
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        cancelled = await rig.decided(subjects.RUN_CANCELLED, event.run_id)
        assert cancelled.data["attempt"] == 2


@pytest.mark.parametrize("state", ["dispatched", "running"])
async def test_cancel_of_an_active_run_ends_when_its_executor_confirms(
    rig: Rig, executor: StandInExecutor, state: str
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted()
        await rig.publish(event)
        if state == "running":
            await _start(rig, executor, event.run_id, 1)
        else:
            await rig.decided(subjects.RUN_DISPATCHED, event.run_id)
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        await rig.publish(
            AttemptCancelled(
                tenant_id="t1",
                run_id=event.run_id,
                attempt=1,
                reason="stopped",
                finished_at=utc_now(),
            )
        )
        cancelled = await rig.decided(subjects.RUN_CANCELLED, event.run_id)
        assert cancelled.data["reason"] == "stopped"


async def test_cancel_never_hangs_when_the_executor_does_not_confirm(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings(cancel_grace_seconds=0.5))):
        event = rig.submitted()
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        cancelled = await rig.decided(subjects.RUN_CANCELLED, event.run_id, timeout=10)
        assert "did not confirm" in cancelled.data["reason"]


async def test_a_failure_reported_while_cancelling_ends_the_run_cancelled(
    rig: Rig, executor: StandInExecutor
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(retry=NO_WAIT)
        await rig.publish(event)
        await _start(rig, executor, event.run_id, 1)
        # Applied in stream order: the cancellation before the failure.
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        await _fail(rig, event.run_id, 1, FailureReason.lost)
        await rig.decided(subjects.RUN_CANCELLED, event.run_id)
        assert "retry_scheduled" not in _kinds(rig, event.run_id)


@pytest.mark.usefixtures("executor")
async def test_a_cancel_that_overtakes_its_submission_still_cancels_the_run(rig: Rig) -> None:
    """Cancellations and submissions travel through different consumers: one that arrives
    first is kept, and ends the run as soon as it is accepted; it is never dispatched."""
    async with running(create_app(rig.settings())):
        event = rig.submitted()
        await rig.publish(CancelRequested(tenant_id="t1", run_id=event.run_id, requested_by="u"))
        marker = rig.submitted()
        await rig.publish(CancelRequested(tenant_id="evil", run_id=marker.run_id, requested_by="x"))
        await rig.publish(marker)
        await rig.decided(subjects.RUN_DISPATCHED, marker.run_id)  # the cancels are kept
        await rig.publish(event)
        cancelled = await rig.decided(subjects.RUN_CANCELLED, event.run_id)
        assert "while queued" in cancelled.data["reason"]
        assert _kinds(rig, event.run_id) == ["queued", "cancelled"]
        # Another tenant's cancellation of a run id it does not own changed nothing.
        assert "cancelled" not in _kinds(rig, marker.run_id)
