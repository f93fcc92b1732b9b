"""When a failed attempt is tried again, and after how long: a run's retry rule."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from controlroom_contracts.api import FailureReason, RetryPolicy

ALWAYS_RETRIED = frozenset({FailureReason.lost, FailureReason.executor_error})


@dataclass(frozen=True)
class RetryRule:
    max_attempts: int = 3
    backoff_seconds: float = 5.0
    backoff_multiplier: float = 2.0
    max_backoff_seconds: float = 300.0
    retry_on_exit_codes: frozenset[int] = frozenset()
    retry_on_timeout: bool = False

    def retries(self, reason: FailureReason, exit_code: int | None) -> bool:
        """Whether a failure of this kind deserves another attempt (attempts permitting)."""
        if reason in ALWAYS_RETRIED:
            return True
        if reason is FailureReason.exit_code:
            return exit_code is not None and exit_code in self.retry_on_exit_codes
        if reason is FailureReason.timeout:
            return self.retry_on_timeout
        return False

    def backoff(self, failed_attempt: int, jitter: float) -> timedelta:
        """Full jitter: uniform in [0, min(cap, base * multiplier^(n-1))), drawn by ``jitter``."""
        ceiling = min(
            self.max_backoff_seconds,
            self.backoff_seconds * self.backoff_multiplier ** (failed_attempt - 1),
        )
        return timedelta(seconds=ceiling * jitter)


def rule_of(policy: RetryPolicy | None) -> RetryRule:
    """The rule a policy states (None: the default rule)."""
    if policy is None:
        return RetryRule()
    return RetryRule(
        max_attempts=policy.max_attempts,
        backoff_seconds=policy.backoff_seconds,
        backoff_multiplier=policy.backoff_multiplier,
        max_backoff_seconds=policy.max_backoff_seconds,
        retry_on_exit_codes=frozenset(policy.retry_on_exit_codes),
        retry_on_timeout=policy.retry_on_timeout,
    )


def jitter(run_id: UUID, attempt: int) -> float:
    """A fraction in [0, 1) fixed by the run and attempt: every replica draws the same."""
    digest = hashlib.sha256(f"{run_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
