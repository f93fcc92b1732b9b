"""The run state machine: every (status, input) pair from a table, then the rules of its
docstring as properties of any sequence of inputs, duplicated, stale or out of order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any, Literal
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from controlroom_scheduler.machine import (
    Cancelled,
    CancelRequested,
    Completed,
    Dispatch,
    Failed,
    Input,
    Lost,
    Outcome,
    Run,
    Started,
    Tick,
    Timing,
    decision_id,
    transition,
)
from controlroom_scheduler.retries import RetryRule, jitter

RUN_ID = UUID("0b6f6d1e-2c1f-4a55-9a59-3d8f6b8f0c01")
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TIMEOUT = 60
TIMING = Timing()
ATTEMPT_DEADLINE = timedelta(seconds=TIMEOUT) + TIMING.deadline_grace
SEQUENCE = 5
"""Decisions the runs of the table already had: numbering must go on from there, not from 1."""

TERMINAL = (RunStatus.completed, RunStatus.failed, RunStatus.cancelled)
TERMINAL_DECISIONS = (RunCompleted, RunFailed, RunCancelled)
STATUS_OF_TERMINAL_DECISION: Mapping[type[Decision], RunStatus] = {
    RunCompleted: RunStatus.completed,
    RunFailed: RunStatus.failed,
    RunCancelled: RunStatus.cancelled,
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ceiling(rule: RetryRule, failed_attempt: int) -> timedelta:
    """The longest wait the retry policy allows after ``failed_attempt`` (api.RetryPolicy)."""
    return timedelta(
        seconds=min(
            rule.max_backoff_seconds,
            rule.backoff_seconds * rule.backoff_multiplier ** (failed_attempt - 1),
        )
    )


# -- runs in each status ------------------------------------------------------------------
def queued(attempt: int = 1, **changes: Any) -> Run:
    run = Run(
        run_id=RUN_ID,
        tenant_id="t1",
        status=RunStatus.queued,
        attempt=attempt,
        executor_kind="docker",
        timeout_seconds=TIMEOUT,
        sequence=SEQUENCE,
    )
    return replace(run, **changes)


def dispatched(attempt: int = 1, **changes: Any) -> Run:
    run = replace(
        queued(attempt),
        status=RunStatus.dispatched,
        dispatched_at=T0,
        deadline=T0 + ATTEMPT_DEADLINE,
    )
    return replace(run, **changes)


def running(attempt: int = 1, **changes: Any) -> Run:
    run = replace(dispatched(attempt), status=RunStatus.running, started_at=T0, executor_id="ex-1")
    return replace(run, **changes)


def ended(status: RunStatus) -> Run:
    return replace(queued(), status=status)


RETRY_EXIT_CODES = RetryRule(retry_on_exit_codes=frozenset({1, 137}))
RETRY_TIMEOUT = RetryRule(retry_on_timeout=True)
RETRY_EVERYTHING = RetryRule(retry_on_exit_codes=frozenset({1, 137}), retry_on_timeout=True)


# -- inputs -------------------------------------------------------------------------------
def started(attempt: int = 1, executor: str = "ex-2", image: str | None = None) -> Started:
    return Started(attempt=attempt, executor_id=executor, sandboxed=True, now=at(1), image=image)


def completed(attempt: int = 1) -> Completed:
    return Completed(attempt=attempt, exit_code=0, summary="ok", finished_at=at(2))


def failed(reason: FailureReason, exit_code: int | None = None, attempt: int = 1) -> Failed:
    return Failed(
        attempt=attempt, reason=reason, exit_code=exit_code, error="boom", finished_at=at(2)
    )


def cancelled(attempt: int = 1) -> Cancelled:
    return Cancelled(attempt=attempt, reason="stopped", finished_at=at(2))


def lost(attempt: int = 1) -> Lost:
    return Lost(attempt=attempt, why="went silent", now=at(2))


def time_of(event: Input) -> datetime:
    if isinstance(event, Completed | Failed | Cancelled):
        return event.finished_at
    return event.now


def attempt_of(event: Input) -> int | None:
    """The attempt an executor's report is about; None for the inputs about the run."""
    if isinstance(event, Dispatch | CancelRequested | Tick):
        return None
    return event.attempt


# -- the table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One row: a run, an input, and what must come of it."""

    run: Run
    event: Input
    status: RunStatus
    attempt: int
    decided: tuple[type[Decision], ...] = ()
    fields: Mapping[str, object] = field(default_factory=dict)
    """Values the decision carries."""
    mentions: str | None = None
    """A fragment of the decision's reason or error."""
    run_fields: Mapping[str, object] = field(default_factory=dict)
    """Values the new run holds."""
    unchanged: bool = False
    """The input was valid but already true: the run comes back as it was."""
    ignored: str | None = None
    """A fragment of the reason the input was ignored; None when it was a valid input."""


def check(case: Case) -> None:
    """The row's expectations, and what every decision must carry: its number, its id, the
    run's identity and the input's time."""
    outcome = transition(case.run, case.event, TIMING)
    new = outcome.run
    assert (new.status, new.attempt) == (case.status, case.attempt)
    assert tuple(type(d) for d in outcome.decisions) == case.decided
    if case.ignored is None:
        assert outcome.ignored is None
    else:
        assert outcome.ignored is not None and case.ignored in outcome.ignored
    if case.ignored is not None or case.unchanged:
        assert new == case.run
    for name, value in case.run_fields.items():
        assert getattr(new, name) == value, name
    assert new.sequence == case.run.sequence + len(outcome.decisions)
    for offset, decision in enumerate(outcome.decisions, start=1):
        assert decision.sequence == case.run.sequence + offset
        assert decision.event_id == decision_id(RUN_ID, case.run.sequence + offset)
        assert (decision.run_id, decision.tenant_id) == (RUN_ID, "t1")
        assert decision.occurred_at == time_of(case.event)
        for name, value in case.fields.items():
            assert getattr(decision, name) == value, name
        if case.mentions is not None:
            said = " ".join(str(getattr(decision, name, None)) for name in ("reason", "error"))
            assert case.mentions in said
        if isinstance(decision, RunRetryScheduled):
            # Full jitter: never before the failure, never later than the capped exponential.
            assert decision.finished_at == time_of(case.event)
            wait = decision.retry_at - decision.finished_at
            assert timedelta(0) <= wait <= ceiling(case.run.retry, decision.failed_attempt)
            assert new.next_attempt_at == decision.retry_at
        if new.status.is_terminal or new.status is RunStatus.queued:
            # Nothing of the ended attempt stays on the run.
            leftovers = (new.deadline, new.executor_id, new.dispatched_at, new.started_at)
            assert all(value is None for value in leftovers)


DISPATCH = [
    pytest.param(
        Case(
            queued(),
            Dispatch(at(1)),
            RunStatus.dispatched,
            1,
            (RunDispatched,),
            fields={"attempt": 1, "executor_kind": "docker"},
            run_fields={
                "dispatched_at": at(1),
                "deadline": at(1) + ATTEMPT_DEADLINE,
                "next_attempt_at": None,
            },
        ),
        id="queued-first-attempt-is-dispatched-with-a-deadline",
    ),
    pytest.param(
        Case(
            queued(2, next_attempt_at=at(5)),
            Dispatch(at(5)),
            RunStatus.dispatched,
            2,
            (RunDispatched,),
            fields={"attempt": 2},
            run_fields={"next_attempt_at": None},
        ),
        id="queued-retry-is-dispatched-once-its-backoff-has-passed",
    ),
    pytest.param(
        Case(
            queued(2, next_attempt_at=at(5)),
            Dispatch(at(4)),
            RunStatus.queued,
            2,
            ignored="backoff",
        ),
        id="queued-retry-is-not-dispatched-before-its-backoff-has-passed",
    ),
    pytest.param(
        Case(
            queued(cancel_requested_at=at(0)),
            Dispatch(at(1)),
            RunStatus.queued,
            1,
            ignored="cancellation requested",
        ),
        id="queued-with-cancellation-requested-is-not-dispatched",
    ),
    pytest.param(
        Case(dispatched(), Dispatch(at(1)), RunStatus.dispatched, 1, ignored="only a queued"),
        id="dispatched-is-not-dispatched-again",
    ),
    pytest.param(
        Case(running(), Dispatch(at(1)), RunStatus.running, 1, ignored="only a queued"),
        id="running-is-not-dispatched-again",
    ),
]


@pytest.mark.parametrize("case", DISPATCH)
def test_dispatch_sends_only_a_queued_run_whose_backoff_has_passed(case: Case) -> None:
    check(case)


STARTED = [
    pytest.param(
        Case(
            dispatched(),
            started(),
            RunStatus.running,
            1,
            (RunStarted,),
            fields={"attempt": 1, "executor_id": "ex-2", "sandboxed": True, "image": None},
            run_fields={
                "executor_id": "ex-2",
                "started_at": at(1),
                "deadline": at(1) + ATTEMPT_DEADLINE,
            },
        ),
        id="dispatched-starts-running-and-its-deadline-counts-from-the-start",
    ),
    pytest.param(
        Case(
            dispatched(),
            started(image="localhost/controlroom-python:1"),
            RunStatus.running,
            1,
            (RunStarted,),
            fields={"image": "localhost/controlroom-python:1", "sandboxed": True},
        ),
        id="dispatched-starts-and-the-decision-carries-the-reported-image",
    ),
    pytest.param(
        Case(
            dispatched(cancel_requested_at=at(0)),
            started(),
            RunStatus.running,
            1,
            (RunStarted,),
            run_fields={"cancel_requested_at": at(0)},
        ),
        id="dispatched-while-cancelling-starts-and-keeps-the-request",
    ),
    pytest.param(
        Case(running(), started(executor="ex-1"), RunStatus.running, 1, unchanged=True),
        id="running-same-report-again-is-a-noop",
    ),
    pytest.param(
        Case(
            running(),
            started(executor="ex-2"),
            RunStatus.running,
            1,
            ignored="already running on ex-1",
        ),
        id="running-started-by-another-executor-is-ignored",
    ),
    pytest.param(
        Case(queued(), started(), RunStatus.queued, 1, ignored="not active"),
        id="queued-current-attempt-not-yet-dispatched-is-ignored",
    ),
]


@pytest.mark.parametrize("case", STARTED)
def test_started_moves_a_dispatched_attempt_to_running_once(case: Case) -> None:
    check(case)


COMPLETED = [
    pytest.param(
        Case(
            dispatched(),
            completed(),
            RunStatus.completed,
            1,
            (RunCompleted,),
            fields={"attempt": 1, "exit_code": 0, "summary": "ok", "finished_at": at(2)},
        ),
        id="dispatched-completes-without-a-started-report",
    ),
    pytest.param(
        Case(
            running(),
            completed(),
            RunStatus.completed,
            1,
            (RunCompleted,),
            fields={"attempt": 1, "finished_at": at(2)},
        ),
        id="running-completes",
    ),
    pytest.param(
        Case(
            running(cancel_requested_at=at(1)),
            completed(),
            RunStatus.completed,
            1,
            (RunCompleted,),
        ),
        # The job finished before the executor could stop it: its result stands.
        id="running-while-cancelling-completes",
    ),
    pytest.param(
        Case(queued(), completed(), RunStatus.queued, 1, ignored="not active"),
        id="queued-is-ignored",
    ),
]


@pytest.mark.parametrize("case", COMPLETED)
def test_completed_ends_an_active_attempt_and_the_run(case: Case) -> None:
    check(case)


def retried(run: Run, event: Input, reason: FailureReason, **fields: object) -> Case:
    return Case(
        run,
        event,
        RunStatus.queued,
        run.attempt + 1,
        (RunRetryScheduled,),
        fields={
            "failed_attempt": run.attempt,
            "next_attempt": run.attempt + 1,
            "reason": reason,
            **fields,
        },
    )


def final(run: Run, event: Input, reason: FailureReason, **fields: object) -> Case:
    return Case(
        run,
        event,
        RunStatus.failed,
        run.attempt,
        (RunFailed,),
        fields={"attempt": run.attempt, "failure_reason": reason, **fields},
    )


R = FailureReason
FAILED = [
    pytest.param(
        retried(running(), failed(R.lost), R.lost, error="boom", finished_at=at(2)),
        id="lost-is-retried",
    ),
    pytest.param(
        retried(running(), failed(R.executor_error), R.executor_error),
        id="executor-error-is-retried",
    ),
    pytest.param(
        final(running(), failed(R.exit_code, 1), R.exit_code, exit_code=1, error="boom"),
        id="exit-code-is-final-by-default",
    ),
    pytest.param(
        retried(running(retry=RETRY_EXIT_CODES), failed(R.exit_code, 137), R.exit_code),
        id="exit-code-listed-in-retry-on-exit-codes-is-retried",
    ),
    pytest.param(
        final(running(retry=RETRY_EXIT_CODES), failed(R.exit_code, 2), R.exit_code),
        id="exit-code-not-listed-is-final",
    ),
    pytest.param(
        final(running(retry=RETRY_EXIT_CODES), failed(R.exit_code, None), R.exit_code),
        id="exit-code-reason-without-a-code-is-final",
    ),
    pytest.param(
        final(running(), failed(R.timeout), R.timeout),
        id="timeout-is-final-by-default",
    ),
    pytest.param(
        retried(running(retry=RETRY_TIMEOUT), failed(R.timeout), R.timeout),
        id="timeout-is-retried-with-retry-on-timeout",
    ),
    pytest.param(final(running(), failed(R.oom), R.oom), id="oom-is-final"),
    pytest.param(
        final(running(retry=RETRY_EVERYTHING), failed(R.oom, 137), R.oom),
        id="oom-is-final-whatever-the-policy",
    ),
    pytest.param(final(running(), failed(R.no_route), R.no_route), id="no-route-is-final"),
    pytest.param(
        final(running(retry=RETRY_EVERYTHING), failed(R.no_route), R.no_route),
        id="no-route-is-final-whatever-the-policy",
    ),
    pytest.param(
        retried(dispatched(), failed(R.lost), R.lost),
        id="dispatched-lost-is-retried",
    ),
    pytest.param(
        retried(running(2), failed(R.lost, attempt=2), R.lost),
        id="second-attempt-lost-is-retried-as-the-last",
    ),
    pytest.param(
        final(running(3), failed(R.lost, attempt=3), R.lost),
        id="lost-on-the-last-attempt-is-final",
    ),
    pytest.param(
        final(running(3, retry=RETRY_EVERYTHING), failed(R.exit_code, 1, attempt=3), R.exit_code),
        id="retryable-exit-code-on-the-last-attempt-is-final",
    ),
    pytest.param(
        final(running(retry=RetryRule(max_attempts=1)), failed(R.executor_error), R.executor_error),
        id="single-attempt-policy-never-retries",
    ),
    pytest.param(
        Case(queued(), failed(R.lost), RunStatus.queued, 1, ignored="not active"),
        id="queued-is-ignored",
    ),
]


@pytest.mark.parametrize("case", FAILED)
def test_failed_attempt_is_retried_only_as_the_retry_rule_says(case: Case) -> None:
    check(case)


LOST = [
    pytest.param(
        retried(running(), lost(), R.lost, error="went silent"), id="running-lost-is-retried"
    ),
    pytest.param(retried(dispatched(), lost(), R.lost), id="dispatched-lost-is-retried"),
    pytest.param(final(running(3), lost(3), R.lost), id="lost-on-the-last-attempt-is-final"),
    pytest.param(
        Case(queued(), lost(), RunStatus.queued, 1, ignored="not active"), id="queued-is-ignored"
    ),
]


@pytest.mark.parametrize("case", LOST)
def test_lost_attempt_is_retried_like_a_lost_failure(case: Case) -> None:
    check(case)


def cancelling(run: Run, event: Input, *, mentions: str | None = None) -> Case:
    return Case(
        run,
        event,
        RunStatus.cancelled,
        run.attempt,
        (RunCancelled,),
        fields={"attempt": run.attempt, "finished_at": time_of(event)},
        mentions=mentions,
    )


CANCEL = [
    pytest.param(
        cancelling(queued(), CancelRequested("alice", at(1)), mentions="alice"),
        id="queued-is-cancelled-at-once",
    ),
    pytest.param(
        cancelling(queued(2, next_attempt_at=at(30)), CancelRequested("alice", at(1))),
        id="queued-waiting-for-a-retry-is-cancelled-at-once",
    ),
    pytest.param(
        Case(
            dispatched(),
            CancelRequested("alice", at(1)),
            RunStatus.dispatched,
            1,
            run_fields={"cancel_requested_at": at(1)},
        ),
        id="dispatched-only-records-the-request",
    ),
    pytest.param(
        Case(
            running(),
            CancelRequested("alice", at(1)),
            RunStatus.running,
            1,
            run_fields={"cancel_requested_at": at(1), "executor_id": "ex-1"},
        ),
        id="running-only-records-the-request",
    ),
    pytest.param(
        Case(
            running(cancel_requested_at=at(0)),
            CancelRequested("bob", at(5)),
            RunStatus.running,
            1,
            unchanged=True,
        ),
        # The first request starts the grace period; asking again must not extend it.
        id="running-second-request-keeps-the-first",
    ),
]


@pytest.mark.parametrize("case", CANCEL)
def test_cancel_request_ends_a_queued_run_and_flags_an_active_one(case: Case) -> None:
    check(case)


CANCELLED = [
    pytest.param(
        cancelling(running(cancel_requested_at=at(1)), cancelled(), mentions="stopped"),
        id="running-while-cancelling-confirmed",
    ),
    pytest.param(
        cancelling(dispatched(cancel_requested_at=at(1)), cancelled()),
        id="dispatched-while-cancelling-confirmed",
    ),
    pytest.param(
        cancelling(running(), cancelled()),
        # The executor stopped the attempt (say an operator killed it): the run is over.
        id="running-stopped-without-a-request",
    ),
    pytest.param(
        cancelling(running(cancel_requested_at=at(1)), failed(R.exit_code, 143), mentions="boom"),
        id="running-failed-while-cancelling-is-cancelled",
    ),
    pytest.param(
        cancelling(running(cancel_requested_at=at(1)), failed(R.lost)),
        id="running-retryable-failure-while-cancelling-is-cancelled-not-retried",
    ),
    pytest.param(
        cancelling(dispatched(cancel_requested_at=at(1)), lost(), mentions="went silent"),
        id="dispatched-lost-while-cancelling-is-cancelled-not-retried",
    ),
    pytest.param(
        Case(queued(), cancelled(), RunStatus.queued, 1, ignored="not active"),
        id="queued-is-ignored",
    ),
]


@pytest.mark.parametrize("case", CANCELLED)
def test_an_attempt_that_ends_while_cancelling_cancels_the_run(case: Case) -> None:
    check(case)


GRACE = TIMING.cancel_grace
DEADLINE = T0 + ATTEMPT_DEADLINE
ONE_SECOND = timedelta(seconds=1)
TICK = [
    pytest.param(
        cancelling(running(cancel_requested_at=at(1)), Tick(at(1) + GRACE), mentions="confirm"),
        id="running-cancelled-when-the-grace-period-ends",
    ),
    pytest.param(
        cancelling(dispatched(cancel_requested_at=at(1)), Tick(at(1) + GRACE)),
        id="dispatched-cancelled-when-the-grace-period-ends",
    ),
    pytest.param(
        Case(
            running(cancel_requested_at=at(1)),
            Tick(at(1) + GRACE - ONE_SECOND),
            RunStatus.running,
            1,
            unchanged=True,
        ),
        id="running-within-the-grace-period-waits",
    ),
    pytest.param(
        final(running(), Tick(DEADLINE), R.timeout),
        id="running-past-its-deadline-times-out",
    ),
    pytest.param(
        retried(dispatched(), Tick(DEADLINE), R.lost),
        id="dispatched-never-started-is-lost-and-retried",
    ),
    pytest.param(
        final(dispatched(3), Tick(DEADLINE), R.lost),
        id="dispatched-never-started-on-the-last-attempt-fails-lost",
    ),
    pytest.param(
        retried(running(retry=RETRY_TIMEOUT), Tick(DEADLINE), R.timeout),
        id="running-past-its-deadline-is-retried-with-retry-on-timeout",
    ),
    pytest.param(
        final(running(3, retry=RETRY_TIMEOUT), Tick(DEADLINE), R.timeout),
        id="timeout-on-the-last-attempt-is-final",
    ),
    pytest.param(
        Case(running(), Tick(DEADLINE - ONE_SECOND), RunStatus.running, 1, unchanged=True),
        id="running-before-its-deadline-waits",
    ),
    pytest.param(
        cancelling(
            running(cancel_requested_at=DEADLINE - ONE_SECOND), Tick(DEADLINE), mentions="timeout"
        ),
        # Timed out during the grace period: the cancellation is what the user asked for.
        id="running-timing-out-while-cancelling-is-cancelled",
    ),
    pytest.param(
        Case(queued(2, next_attempt_at=at(5)), Tick(at(1000)), RunStatus.queued, 2, unchanged=True),
        # Time alone never dispatches: admission does.
        id="queued-waits-for-dispatch",
    ),
]


@pytest.mark.parametrize("case", TICK)
def test_tick_decides_timeouts_and_unconfirmed_cancellations(case: Case) -> None:
    check(case)


EVERY_INPUT: Sequence[Input] = (
    Dispatch(at(1)),
    started(),
    completed(),
    failed(R.lost),
    cancelled(),
    CancelRequested("alice", at(1)),
    lost(),
    Tick(at(10_000)),
)
TERMINAL_CASES = [
    pytest.param(
        Case(ended(status), event, status, 1, ignored=f"already {status.value}"),
        id=f"{status.value}-{type(event).__name__}",
    )
    for status in TERMINAL
    for event in EVERY_INPUT
]


@pytest.mark.parametrize("case", TERMINAL_CASES)
def test_a_terminal_run_ignores_every_input(case: Case) -> None:
    check(case)


STALE_REPORTS: Sequence[Input] = (
    started(1),
    completed(1),
    failed(R.exit_code, 1, attempt=1),
    cancelled(1),
    lost(1),
    started(3),
    completed(3),
    failed(R.lost, attempt=3),
    cancelled(3),
    lost(3),
)
STALE_CASES = [
    pytest.param(
        Case(run, event, run.status, 2, ignored="not the current one"),
        id=f"{run.status.value}-{type(event).__name__}-of-attempt-{attempt_of(event)}",
    )
    for run in (queued(2, next_attempt_at=at(5)), dispatched(2), running(2))
    for event in STALE_REPORTS
]


@pytest.mark.parametrize("case", STALE_CASES)
def test_a_report_about_another_attempt_is_ignored(case: Case) -> None:
    check(case)


# -- numbering, backoff, jitter -----------------------------------------------------------
def test_decision_ids_are_fixed_by_run_and_sequence() -> None:
    assert decision_id(RUN_ID, 1) == decision_id(RUN_ID, 1)
    assert decision_id(RUN_ID, 1) != decision_id(RUN_ID, 2)
    assert decision_id(RUN_ID, 1) != decision_id(uuid4(), 1)


def test_decisions_are_numbered_on_from_the_runs_sequence() -> None:
    inputs: Sequence[Input] = (
        Dispatch(at(0)),
        started(1),
        lost(1),
        Dispatch(at(400)),
        started(2),
        completed(2),
    )
    outcomes = []
    run = replace(queued(), sequence=7)
    for event in inputs:
        outcome = transition(run, event, TIMING)
        outcomes.append(outcome)
        run = outcome.run
    decisions = [d for o in outcomes for d in o.decisions]
    assert [type(d) for d in decisions] == [
        RunDispatched,
        RunStarted,
        RunRetryScheduled,
        RunDispatched,
        RunStarted,
        RunCompleted,
    ]
    assert [d.sequence for d in decisions] == [8, 9, 10, 11, 12, 13]
    assert [d.event_id for d in decisions] == [decision_id(RUN_ID, n) for n in range(8, 14)]
    assert run.sequence == 13


def test_the_same_transition_takes_the_same_decisions() -> None:
    """A decision re-taken after a crash must carry the same ids to be deduplicated."""
    assert transition(running(), lost(), TIMING) == transition(running(), lost(), TIMING)


@given(st.uuids(), st.integers(min_value=1, max_value=10))
def test_jitter_is_a_fraction_fixed_by_run_and_attempt(run_id: UUID, attempt: int) -> None:
    assert jitter(run_id, attempt) == jitter(run_id, attempt)
    assert 0.0 <= jitter(run_id, attempt) < 1.0


def test_jitter_differs_between_attempts() -> None:
    assert len({jitter(RUN_ID, n) for n in range(1, 11)}) == 10


@pytest.mark.parametrize(
    ("failed_attempt", "seconds"),
    [(1, 5.0), (2, 10.0), (3, 20.0), (6, 160.0), (7, 300.0), (10, 300.0)],
    ids=["first", "second", "third", "sixth", "seventh-capped", "tenth-capped"],
)
def test_backoff_ceiling_grows_exponentially_up_to_the_cap(
    failed_attempt: int, seconds: float
) -> None:
    rule = RetryRule()
    assert ceiling(rule, failed_attempt) == timedelta(seconds=seconds)
    assert rule.backoff(failed_attempt, 0.0) == timedelta(0)
    assert rule.backoff(failed_attempt, 0.5) == timedelta(seconds=seconds / 2)


RULES = st.builds(
    RetryRule,
    max_attempts=st.integers(min_value=1, max_value=10),
    backoff_seconds=st.floats(min_value=0, max_value=3600),
    backoff_multiplier=st.floats(min_value=1, max_value=10),
    max_backoff_seconds=st.floats(min_value=0, max_value=24 * 3600),
)


@given(
    RULES,
    st.integers(min_value=1, max_value=10),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_is_full_jitter_below_the_capped_exponential(
    rule: RetryRule, failed_attempt: int, draw: float
) -> None:
    wait = rule.backoff(failed_attempt, draw)
    # timedelta keeps microseconds: the rounding may land one above the exact product.
    resolution = timedelta(microseconds=1)
    assert timedelta(0) <= wait <= ceiling(rule, failed_attempt) + resolution
    assert abs(wait - ceiling(rule, failed_attempt) * draw) <= resolution


def test_retry_waits_for_the_backoff_drawn_by_the_runs_jitter() -> None:
    outcome = transition(running(2), lost(2), TIMING)
    (decision,) = outcome.decisions
    assert isinstance(decision, RunRetryScheduled)
    expected = at(2) + RetryRule().backoff(2, jitter(RUN_ID, 2))
    assert decision.retry_at == expected == outcome.run.next_attempt_at


# -- properties over any sequence of inputs -----------------------------------------------
Kind = Literal[
    "dispatch",
    "started",
    "completed",
    "failed",
    "cancelled",
    "cancel_requested",
    "lost",
    "tick",
    "again",
]
# Drawn in proportion to how often each appears here: a cancel request ends a queued run at
# once, so it is rare enough for most runs to get through a few attempts first.
KINDS: tuple[Kind, ...] = (
    *("dispatch",) * 4,
    *("started",) * 4,
    *("completed",) * 2,
    *("failed",) * 3,
    *("lost",) * 2,
    *("tick",) * 3,
    *("again",) * 2,
    "cancelled",
    "cancel_requested",
)
REPORTS: tuple[Kind, ...] = ("completed", "failed", "lost", "cancelled")


@dataclass(frozen=True)
class Step:
    """An input to be made against the run as it is when the step comes."""

    kind: Kind
    attempt: int = 0
    relative: bool = True
    """``attempt`` is added to the run's current attempt (else it is the attempt itself)."""
    wait: float = 0.0
    """Seconds the clock moves forward before the input."""
    reason: FailureReason = FailureReason.lost
    exit_code: int | None = None
    executor: str = "ex-1"


def make(step: Step, run: Run, now: datetime) -> Input:
    attempt = run.attempt + step.attempt if step.relative else step.attempt
    if step.kind == "dispatch":
        return Dispatch(now)
    if step.kind == "started":
        return Started(attempt, step.executor, sandboxed=True, now=now)
    if step.kind == "completed":
        return Completed(attempt, exit_code=0, summary="ok", finished_at=now)
    if step.kind == "failed":
        return Failed(attempt, step.reason, step.exit_code, error="boom", finished_at=now)
    if step.kind == "cancelled":
        return Cancelled(attempt, reason="stopped", finished_at=now)
    if step.kind == "cancel_requested":
        return CancelRequested("alice", now)
    if step.kind == "lost":
        return Lost(attempt, why="went silent", now=now)
    return Tick(now)


@dataclass(frozen=True)
class History:
    run: Run
    now: datetime
    decisions: tuple[Decision, ...] = ()
    last: Input | None = None


def ended_attempt(decision: Decision) -> int | None:
    if isinstance(decision, RunRetryScheduled):
        return decision.failed_attempt
    if isinstance(decision, TERMINAL_DECISIONS):
        return decision.attempt
    return None


def decided_attempt(decision: Decision) -> int:
    if isinstance(decision, RunRetryScheduled):
        return decision.failed_attempt
    assert isinstance(
        decision, RunDispatched | RunStarted | RunCompleted | RunFailed | RunCancelled
    )
    return decision.attempt


def failure_reason(decision: Decision) -> FailureReason | None:
    if isinstance(decision, RunRetryScheduled):
        return decision.reason
    if isinstance(decision, RunFailed):
        return decision.failure_reason
    return None


def check_step(before: Run, event: Input, outcome: Outcome, history: History) -> None:
    """The machine's rules, after one more input, over everything decided so far."""
    after, decisions = outcome.run, history.decisions

    # (f) an ignored input changes nothing and decides nothing.
    if outcome.ignored is not None:
        assert after == before and outcome.decisions == ()
    # (a) a terminal run never changes.
    if before.status.is_terminal:
        assert after == before and outcome.decisions == ()
        assert outcome.ignored is not None
    # (b) fencing: a report about another attempt changes nothing.
    reported = attempt_of(event)
    if reported is not None and reported != before.attempt:
        assert after == before and outcome.decisions == ()
    assert len(outcome.decisions) <= 1
    assert all(decided_attempt(d) == before.attempt for d in outcome.decisions)

    # (d) attempts only go up, one at a time, and never past the policy's maximum.
    assert before.attempt <= after.attempt <= before.attempt + 1
    assert 1 <= after.attempt <= after.retry.max_attempts

    # (c) at most one attempt active: each attempt is dispatched once, in order, and the
    # attempts dispatched but not yet ended are the active one, if any.
    dispatches = [d.attempt for d in decisions if isinstance(d, RunDispatched)]
    assert dispatches == list(range(1, len(dispatches) + 1))
    ends = [a for d in decisions if (a := ended_attempt(d)) is not None and a in dispatches]
    assert len(ends) == len(set(ends))
    still_open = len(dispatches) - len(ends)
    assert still_open in (0, 1)
    assert (still_open == 1) == after.active
    if after.active:
        assert after.attempt == len(dispatches)
    if after.status is RunStatus.queued:
        assert after.attempt == len(dispatches) + 1
        # Dispatch refuses a queued run with a cancel request, so one would wait forever.
        assert after.cancel_requested_at is None

    # (e) decisions are numbered 1..n across the whole history, with ids of their own.
    assert [d.sequence for d in decisions] == list(range(1, len(decisions) + 1))
    assert after.sequence == len(decisions)
    assert [d.event_id for d in decisions] == [
        decision_id(after.run_id, d.sequence or 0) for d in decisions
    ]
    assert len({d.event_id for d in decisions}) == len(decisions)

    # (g) one terminal decision at most, and the run's status says which.
    terminal = [d for d in decisions if isinstance(d, TERMINAL_DECISIONS)]
    assert len(terminal) <= 1
    assert after.status.is_terminal == bool(terminal)
    if terminal:
        assert after.status is STATUS_OF_TERMINAL_DECISION[type(terminal[0])]

    for decision in outcome.decisions:
        # (h) a retry is of the next attempt, and never scheduled before the failure.
        if isinstance(decision, RunRetryScheduled):
            assert decision.next_attempt == decision.failed_attempt + 1
            assert decision.finished_at is not None
            assert decision.retry_at >= decision.finished_at
            assert decision.retry_at - decision.finished_at <= ceiling(
                before.retry, decision.failed_attempt
            )
            assert after.next_attempt_at == decision.retry_at
        # A retried attempt is not dispatched before its backoff has passed.
        if isinstance(decision, RunDispatched) and before.next_attempt_at is not None:
            assert decision.occurred_at >= before.next_attempt_at
        # The scheduler never decides a timeout or a cancellation before it is due.
        if isinstance(event, Tick) and failure_reason(decision) in (
            FailureReason.timeout,
            FailureReason.lost,
        ):
            began = before.started_at or before.dispatched_at
            assert began is not None and before.deadline is not None
            assert before.deadline == began + timedelta(seconds=before.timeout_seconds) + (
                TIMING.deadline_grace
            )
            assert event.now >= before.deadline
        if isinstance(event, Tick) and isinstance(decision, RunCancelled):
            requested = before.cancel_requested_at
            assert requested is not None and before.deadline is not None
            assert event.now >= min(requested + TIMING.cancel_grace, before.deadline)


def apply(history: History, step: Step) -> History:
    now = history.now + timedelta(seconds=step.wait)
    if step.kind == "again" and history.last is not None:
        # Redelivered as it was first sent, time and all.
        event = history.last
    else:
        event = make(step, history.run, now)
    outcome = transition(history.run, event, TIMING)
    after = History(outcome.run, now, history.decisions + outcome.decisions, event)
    check_step(history.run, event, outcome, after)
    return after


# Mostly short steps, so that attempts get reported before their deadline; some long enough
# to pass a backoff, a cancellation's grace period or a deadline.
WAITS = st.one_of(
    st.sampled_from([0.0, 0.0, 0.0, 1.0, 5.0, 10.0, 30.0, 100.0, 400.0]),
    st.floats(min_value=0, max_value=20),
)
POLICIES = st.builds(
    RetryRule,
    max_attempts=st.integers(min_value=1, max_value=4),
    backoff_seconds=st.sampled_from([0.0, 1.0, 5.0, 60.0]),
    backoff_multiplier=st.sampled_from([1.0, 2.0, 3.0]),
    max_backoff_seconds=st.sampled_from([0.0, 10.0, 300.0]),
    retry_on_exit_codes=st.frozensets(st.sampled_from([1, 2, 137])),
    retry_on_timeout=st.booleans(),
)
FRESH_RUNS = st.builds(
    Run,
    run_id=st.uuids(),
    tenant_id=st.just("t1"),
    status=st.just(RunStatus.queued),
    attempt=st.just(1),
    executor_kind=st.just("docker"),
    timeout_seconds=st.integers(min_value=1, max_value=120),
    retry=POLICIES,
)


@st.composite
def steps(draw: st.DrawFn) -> Step:
    # Mostly the current attempt, sometimes a stale or a future one, sometimes a fixed number
    # (so a redelivered report names the attempt it was first sent for).
    relative, attempt = draw(
        st.sampled_from([(True, 0)] * 8 + [(True, -1), (True, 1), (True, -2)])
        | st.tuples(st.just(False), st.integers(min_value=0, max_value=5))
    )
    return Step(
        kind=draw(st.sampled_from(KINDS)),
        attempt=attempt,
        relative=relative,
        wait=draw(WAITS),
        reason=draw(st.sampled_from(FailureReason)),
        exit_code=draw(st.sampled_from([None, 1, 2, 137])),
        executor=draw(st.sampled_from(["ex-1", "ex-2"])),
    )


@st.composite
def with_duplicates(draw: st.DrawFn, base: list[Step]) -> list[Step]:
    """``base`` with some of its steps delivered again at other places."""
    result = list(base)
    if base:
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            copy = draw(st.sampled_from(base))
            result.insert(draw(st.integers(min_value=0, max_value=len(result))), copy)
    return result


@st.composite
def shuffled_lifecycles(draw: st.DrawFn, max_attempts: int = 4) -> list[Step]:
    """What executors would report for every attempt, in any order and redelivered."""
    script: list[Step] = []
    for n in range(1, max_attempts + 1):
        script += [
            Step("dispatch"),
            Step("started", n, relative=False, executor=draw(st.sampled_from(["ex-1", "ex-2"]))),
            Step(
                draw(st.sampled_from(REPORTS)),
                n,
                relative=False,
                reason=draw(st.sampled_from(FailureReason)),
                exit_code=draw(st.sampled_from([None, 1, 137])),
            ),
        ]
    script += [Step("tick") for _ in range(draw(st.integers(min_value=0, max_value=3)))]
    if draw(st.booleans()):
        script.append(Step("cancel_requested"))
    order = draw(st.permutations(draw(with_duplicates(script))))
    waits = draw(st.lists(WAITS, min_size=len(order), max_size=len(order)))
    return [replace(step, wait=wait) for step, wait in zip(order, waits, strict=True)]


def fold(run: Run, plan: Sequence[Step]) -> History:
    return reduce(apply, plan, History(run, T0))


@settings(max_examples=300, deadline=None)
@given(FRESH_RUNS, st.lists(steps(), min_size=8, max_size=60).flatmap(with_duplicates))
def test_any_sequence_of_inputs_keeps_the_machines_rules(run: Run, plan: list[Step]) -> None:
    fold(run, plan)


@settings(max_examples=300, deadline=None)
@given(FRESH_RUNS, shuffled_lifecycles())
def test_reports_in_any_order_and_redelivered_keep_the_machines_rules(
    run: Run, plan: list[Step]
) -> None:
    fold(run, plan)


@settings(max_examples=100, deadline=None)
@given(FRESH_RUNS, st.lists(steps(), max_size=40))
def test_the_same_inputs_always_lead_to_the_same_decisions(run: Run, plan: list[Step]) -> None:
    """Every replica replaying a run's inputs must arrive at the same run and decisions."""
    assert fold(run, plan) == fold(run, plan)
