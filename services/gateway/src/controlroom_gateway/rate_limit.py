"""Per-tenant token buckets: a burst is allowed, a sustained excess gets 429 + Retry-After.

The buckets live in each gateway replica's memory, so with N replicas a tenant's ceiling is N
times the configured rate; a shared limiter (NATS KV) would make it exact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TenantRateLimiter:
    def __init__(self, rate_per_second: float, burst: int) -> None:
        self._rate = rate_per_second
        self._burst = float(max(burst, 1))
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def acquire(self, tenant_id: str) -> int | None:
        """Take a token; None if allowed, else the seconds to wait before retrying."""
        if not self.enabled:
            return None
        now = time.monotonic()
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))
