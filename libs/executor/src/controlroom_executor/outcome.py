"""How an attempt ended, decided from what the engine saw, and the report that says so."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import Event, utc_now
from controlroom_contracts.events import AttemptCancelled, AttemptCompleted, AttemptFailed
from controlroom_executor.backend import AttemptKey, Exit

Status = Literal["completed", "failed", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    exit_code: int | None = None
    failure_reason: FailureReason | None = None
    error: str | None = None
    summary: str = "completed with exit code 0"
    finished_at: datetime = field(default_factory=utc_now)
    """When the job ended (not when the report could be sent)."""

    @classmethod
    def failed(cls, reason: FailureReason, error: str, exit_code: int | None = None) -> Outcome:
        return cls("failed", exit_code, reason, error)

    @classmethod
    def cancelled(cls, why: str) -> Outcome:
        return cls("cancelled", error=why)

    def report(self, key: AttemptKey, tenant_id: str) -> Event:
        common = {
            "tenant_id": tenant_id,
            "run_id": key.run_id,
            "attempt": key.attempt,
            "finished_at": self.finished_at,
        }
        if self.status == "cancelled":
            return AttemptCancelled(**common, reason=self.error or "cancelled")
        if self.status == "completed":
            return AttemptCompleted(**common, exit_code=0, summary=self.summary)
        assert self.failure_reason is not None
        return AttemptFailed(
            **common,
            failure_reason=self.failure_reason,
            exit_code=self.exit_code,
            error=self.error or self.failure_reason.value,
        )


def judge(
    exit: Exit,
    *,
    timed_out: bool,
    cancelled: bool,
    timeout_seconds: int,
    stdout_tail: str,
    stderr_tail: str,
    finished_at: datetime,
) -> Outcome:
    """The attempt's outcome. Cancellation and timeout win over how the process ended: the
    executor stopped it, so its exit code says nothing of the job."""
    return replace(
        _judge(exit, timed_out, cancelled, timeout_seconds, stdout_tail, stderr_tail),
        finished_at=finished_at,
    )


def _judge(
    exit: Exit,
    timed_out: bool,
    cancelled: bool,
    timeout_seconds: int,
    stdout_tail: str,
    stderr_tail: str,
) -> Outcome:
    if cancelled:
        return Outcome.cancelled("cancelled")
    if timed_out:
        return Outcome.failed(
            FailureReason.timeout, f"timed out after {timeout_seconds}s", exit.exit_code
        )
    if exit.failure_reason is not None:
        return Outcome.failed(
            exit.failure_reason,
            exit.error or _describe(exit.exit_code, stderr_tail),
            exit.exit_code,
        )
    if exit.exit_code == 0:
        return Outcome("completed", 0, summary=_summary(stdout_tail))
    if "MemoryError" in stderr_tail:  # an address-space rlimit: Python says so before dying
        return Outcome.failed(
            FailureReason.oom, _describe(exit.exit_code, stderr_tail), exit.exit_code
        )
    return Outcome.failed(
        FailureReason.exit_code, _describe(exit.exit_code, stderr_tail), exit.exit_code
    )


def _describe(exit_code: int | None, stderr_tail: str) -> str:
    head = f"exited with code {exit_code}"
    if exit_code is not None and exit_code < 0:
        try:
            head = f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            head = f"killed by signal {-exit_code}"
    tail = stderr_tail.strip()[-2000:]
    return f"{head}: {tail}" if tail else head


def _summary(stdout_tail: str) -> str:
    last_line = next((ln for ln in reversed(stdout_tail.splitlines()) if ln.strip()), "")
    return last_line[:500] if last_line else "completed with exit code 0"
