"""The run state machine: one pure function, ``(run, input) -> (run, decisions)``.

Every change to a run's status goes through ``transition``. It reads no clock and no database:
the time comes in with the input, and the decisions it returns are the events the scheduler
publishes. The service around it loads the run, applies inputs in order, writes back what
changed and stages the decisions, all in one transaction.

Rules it keeps, whatever order inputs arrive in, duplicated or stale:
  * a terminal run never changes;
  * a report about another attempt than the current one changes nothing (fencing);
  * at most one attempt is active (dispatched or running) at a time;
  * a retried run goes back to ``queued`` with the next attempt number, and is not dispatched
    before its backoff has passed.
Anything else is *ignored*: the result says why, the run is returned unchanged and nothing is
decided. The service counts ignored inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from controlroom_contracts.api import FailureReason, RunStatus
from controlroom_contracts.events import (
    Decision,
    RunCancelled,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunRetryScheduled,
    RunStarted,
)
from controlroom_scheduler.retries import RetryRule, jitter

ACTIVE = frozenset({RunStatus.dispatched, RunStatus.running})


@dataclass(frozen=True)
class Timing:
    """Deployment-wide allowances the machine applies."""

    deadline_grace: timedelta = timedelta(seconds=30)
    """Past an attempt's own timeout, how long the scheduler waits for the executor's report
    before it decides the attempt timed out itself."""
    cancel_grace: timedelta = timedelta(seconds=10)
    """How long an executor has to confirm a cancellation before the scheduler decides it."""


DEFAULT_TIMING = Timing()


@dataclass(frozen=True)
class Run:
    """What the scheduler knows of a run: its status and its current attempt."""

    run_id: UUID
    tenant_id: str
    status: RunStatus
    attempt: int
    """The current attempt's number, or the next one's while queued (1 on submission)."""
    executor_kind: str
    timeout_seconds: int
    retry: RetryRule = field(default_factory=RetryRule)
    sequence: int = 0
    """Decisions taken so far; each one published carries its number."""
    next_attempt_at: datetime | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    executor_id: str | None = None
    deadline: datetime | None = None
    cancel_requested_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


# -- inputs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dispatch:
    """Admission chose the run: send its current attempt to an executor."""

    now: datetime


@dataclass(frozen=True)
class Started:
    attempt: int
    executor_id: str
    sandboxed: bool
    now: datetime
    image: str | None = None
    """The image the executor started the attempt in (None: a local process, or unsaid)."""


@dataclass(frozen=True)
class Completed:
    attempt: int
    exit_code: int
    summary: str
    finished_at: datetime
    now: datetime | None = None
    """When the scheduler decides (the decision's time; ``finished_at`` is the executor's)."""


@dataclass(frozen=True)
class Failed:
    attempt: int
    reason: FailureReason
    exit_code: int | None
    error: str
    finished_at: datetime
    now: datetime | None = None


@dataclass(frozen=True)
class Cancelled:
    """The executor stopped the attempt."""

    attempt: int
    reason: str
    finished_at: datetime
    now: datetime | None = None


@dataclass(frozen=True)
class CancelRequested:
    requested_by: str
    now: datetime


@dataclass(frozen=True)
class Lost:
    """The attempt's executor went silent or stopped listing it."""

    attempt: int
    why: str
    now: datetime


@dataclass(frozen=True)
class Tick:
    """Time passed: deadlines and cancellation grace periods are checked against ``now``."""

    now: datetime


Input = Dispatch | Started | Completed | Failed | Cancelled | CancelRequested | Lost | Tick


@dataclass(frozen=True)
class Outcome:
    run: Run
    decisions: tuple[Decision, ...] = ()
    ignored: str | None = None
    """Why the input changed nothing, when it was not a valid transition."""


def _ignore(run: Run, why: str) -> Outcome:
    return Outcome(run, (), why)


def _noop(run: Run) -> Outcome:
    """Valid, and nothing to do (a duplicate of what is already true)."""
    return Outcome(run, (), None)


def decision_id(run_id: UUID, sequence: int) -> UUID:
    """The same decision always gets the same event id, so a decision re-taken after a crash
    before commit is dropped by JetStream's duplicate window when published twice."""
    return uuid5(NAMESPACE_URL, f"controlroom/run/{run_id}/decision/{sequence}")


class _Decide:
    """Numbers the decisions of one transition."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.decisions: list[Decision] = []

    def __call__(self, make: type[Decision], **fields: object) -> None:
        sequence = self.run.sequence + len(self.decisions) + 1
        self.decisions.append(
            make(
                event_id=decision_id(self.run.run_id, sequence),
                tenant_id=self.run.tenant_id,
                run_id=self.run.run_id,
                sequence=sequence,
                **fields,
            )
        )

    def outcome(self, run: Run) -> Outcome:
        return Outcome(
            replace(run, sequence=self.run.sequence + len(self.decisions)), tuple(self.decisions)
        )


def transition(run: Run, event: Input, timing: Timing = DEFAULT_TIMING) -> Outcome:
    """Apply one input to a run: the new run and the decisions to publish."""
    if run.status.is_terminal:
        return _ignore(run, f"run already {run.status.value}")
    if isinstance(event, Dispatch):
        return _dispatch(run, event, timing)
    if isinstance(event, CancelRequested):
        return _cancel_requested(run, event)
    if isinstance(event, Tick):
        return _tick(run, event, timing)
    if event.attempt != run.attempt:
        return _ignore(run, f"attempt {event.attempt} is not the current one ({run.attempt})")
    if not run.active:
        return _ignore(run, f"attempt {event.attempt} is not active (run {run.status.value})")
    if isinstance(event, Started):
        return _started(run, event, timing)
    if isinstance(event, Completed):
        decide = _Decide(run)
        decide(
            RunCompleted,
            attempt=run.attempt,
            exit_code=event.exit_code,
            summary=event.summary,
            finished_at=event.finished_at,
            occurred_at=event.now or event.finished_at,
        )
        return decide.outcome(_finished(run, RunStatus.completed))
    if isinstance(event, Cancelled):
        return _cancelled(run, event.reason, event.finished_at, event.now)
    if isinstance(event, Failed):
        return _failed(
            run, event.reason, event.exit_code, event.error, event.finished_at, event.now
        )
    return _failed(run, FailureReason.lost, None, event.why, event.now)


def _dispatch(run: Run, event: Dispatch, timing: Timing) -> Outcome:
    if run.status is not RunStatus.queued:
        return _ignore(run, f"only a queued run is dispatched (run {run.status.value})")
    if run.cancel_requested_at is not None:
        return _ignore(run, "cancellation requested")
    if run.next_attempt_at is not None and run.next_attempt_at > event.now:
        return _ignore(run, "retry backoff has not passed")
    decide = _Decide(run)
    decide(
        RunDispatched, attempt=run.attempt, executor_kind=run.executor_kind, occurred_at=event.now
    )
    return decide.outcome(
        replace(
            run,
            status=RunStatus.dispatched,
            dispatched_at=event.now,
            started_at=None,
            executor_id=None,
            next_attempt_at=None,
            deadline=event.now + timedelta(seconds=run.timeout_seconds) + timing.deadline_grace,
        )
    )


def _started(run: Run, event: Started, timing: Timing) -> Outcome:
    if run.status is RunStatus.running:
        if run.executor_id == event.executor_id:
            return _noop(run)  # the same report again
        return _ignore(run, f"attempt already running on {run.executor_id}")
    decide = _Decide(run)
    decide(
        RunStarted,
        attempt=run.attempt,
        executor_kind=run.executor_kind,
        executor_id=event.executor_id,
        sandboxed=event.sandboxed,
        image=event.image,
        occurred_at=event.now,
    )
    return decide.outcome(
        replace(
            run,
            status=RunStatus.running,
            started_at=event.now,
            executor_id=event.executor_id,
            deadline=event.now + timedelta(seconds=run.timeout_seconds) + timing.deadline_grace,
        )
    )


def _cancel_requested(run: Run, event: CancelRequested) -> Outcome:
    if run.status is RunStatus.queued:
        return _cancelled(run, f"cancelled by {event.requested_by} while queued", event.now)
    if run.cancel_requested_at is not None:
        return _noop(run)
    # The executor holding the attempt hears the same request and stops it; its report (or
    # the grace period, see _tick) ends the run.
    return Outcome(replace(run, cancel_requested_at=event.now))


def _tick(run: Run, event: Tick, timing: Timing) -> Outcome:
    if not run.active:
        return _noop(run)
    cancelling = run.cancel_requested_at
    if cancelling is not None and event.now >= cancelling + timing.cancel_grace:
        return _cancelled(run, "cancelled; the executor did not confirm in time", event.now)
    if run.deadline is not None and event.now >= run.deadline:
        if run.status is RunStatus.dispatched:
            # No executor ever started it: nothing of the job ran out of time, the attempt
            # went missing (retried like any lost attempt).
            return _failed(
                run,
                FailureReason.lost,
                None,
                f"no executor started the attempt within {run.timeout_seconds} s and the grace",
                event.now,
            )
        return _failed(
            run,
            FailureReason.timeout,
            None,
            f"no outcome reported within the {run.timeout_seconds} s timeout",
            event.now,
        )
    return _noop(run)


def _cancelled(run: Run, reason: str, at: datetime, decided: datetime | None = None) -> Outcome:
    decide = _Decide(run)
    decide(
        RunCancelled,
        attempt=run.attempt,
        reason=reason,
        finished_at=at,
        occurred_at=decided or at,
    )
    return decide.outcome(_finished(run, RunStatus.cancelled))


def _failed(
    run: Run,
    reason: FailureReason,
    exit_code: int | None,
    error: str,
    at: datetime,
    decided: datetime | None = None,
) -> Outcome:
    if run.cancel_requested_at is not None:
        # It ended while being cancelled: the cancellation is what the user asked for.
        return _cancelled(run, f"cancelled ({error})", at, decided)
    decide = _Decide(run)
    if run.attempt < run.retry.max_attempts and run.retry.retries(reason, exit_code):
        retry_at = at + run.retry.backoff(run.attempt, jitter(run.run_id, run.attempt))
        decide(
            RunRetryScheduled,
            failed_attempt=run.attempt,
            next_attempt=run.attempt + 1,
            retry_at=retry_at,
            reason=reason,
            exit_code=exit_code,
            error=error,
            finished_at=at,
            occurred_at=decided or at,
        )
        return decide.outcome(
            replace(
                _finished(run, RunStatus.queued),
                attempt=run.attempt + 1,
                next_attempt_at=retry_at,
            )
        )
    decide(
        RunFailed,
        attempt=run.attempt,
        failure_reason=reason,
        exit_code=exit_code,
        error=error,
        finished_at=at,
        occurred_at=decided or at,
    )
    return decide.outcome(_finished(run, RunStatus.failed))


def _finished(run: Run, status: RunStatus) -> Run:
    """The current attempt is over: nothing of it stays active."""
    return replace(
        run, status=status, deadline=None, dispatched_at=None, started_at=None, executor_id=None
    )
