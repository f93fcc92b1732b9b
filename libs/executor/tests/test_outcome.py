"""How an attempt ended, from what the engine saw: one table of every case."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from controlroom_contracts.api import FailureReason
from controlroom_contracts.events import AttemptCancelled, AttemptCompleted, AttemptFailed
from controlroom_executor.backend import AttemptKey, Exit
from controlroom_executor.outcome import judge

ENDED = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exit", "timed_out", "cancelled", "stderr", "status", "reason", "error_starts"),
    [
        (Exit(0), False, False, "", "completed", None, None),
        (
            Exit(3),
            False,
            False,
            "boom\n",
            "failed",
            FailureReason.exit_code,
            "exited with code 3: boom",
        ),
        (Exit(-9), False, False, "", "failed", FailureReason.exit_code, "killed by signal SIGKILL"),
        (Exit(1), False, False, "MemoryError\n", "failed", FailureReason.oom, "exited with code 1"),
        (
            Exit(137, FailureReason.oom, "out of memory"),
            False,
            False,
            "",
            "failed",
            FailureReason.oom,
            "out of memory",
        ),
        (
            Exit(None, FailureReason.image_pull, "no image x"),
            False,
            False,
            "",
            "failed",
            FailureReason.image_pull,
            "no image x",
        ),
        (
            Exit(None, FailureReason.evicted),
            False,
            False,
            "",
            "failed",
            FailureReason.evicted,
            "exited with code None",
        ),
        # The executor stopped it: how the process ended says nothing of the job.
        (Exit(143), True, False, "", "failed", FailureReason.timeout, "timed out after 7s"),
        (Exit(0), True, False, "", "failed", FailureReason.timeout, "timed out after 7s"),
        (Exit(143), False, True, "", "cancelled", None, "cancelled"),
        (Exit(137, FailureReason.oom), False, True, "", "cancelled", None, "cancelled"),
    ],
)
def test_outcome_of_every_kind_of_end(
    exit: Exit,
    timed_out: bool,
    cancelled: bool,
    stderr: str,
    status: str,
    reason: FailureReason | None,
    error_starts: str | None,
) -> None:
    outcome = judge(
        exit,
        timed_out=timed_out,
        cancelled=cancelled,
        timeout_seconds=7,
        stdout_tail="first\nlast line\n\n",
        stderr_tail=stderr,
        finished_at=ENDED,
    )
    assert (outcome.status, outcome.failure_reason) == (status, reason)
    if error_starts is not None:
        assert (outcome.error or "").startswith(error_starts)
    report = outcome.report(AttemptKey(uuid4(), 2), "t1")
    assert report.finished_at == ENDED  # type: ignore[attr-defined]
    expected = {
        "completed": AttemptCompleted,
        "failed": AttemptFailed,
        "cancelled": AttemptCancelled,
    }
    assert isinstance(report, expected[status])
    if status == "completed":
        assert isinstance(report, AttemptCompleted) and report.summary == "last line"
