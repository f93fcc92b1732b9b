"""Exponential backoff, the one rule every retry loop of the platform waits by."""

from __future__ import annotations


def exponential_backoff(attempt: int, *, cap: float, base: float = 1.0) -> float:
    """``base`` seconds before the second attempt, doubling with each one after, at most
    ``cap``: attempt 1 -> base, 2 -> 2 x base, 3 -> 4 x base ..."""
    return float(min(base * 2.0 ** max(attempt - 1, 0), cap))
