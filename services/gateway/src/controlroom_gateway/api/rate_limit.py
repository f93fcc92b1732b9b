"""Token buckets: a burst is allowed, a sustained excess gets 429 + Retry-After.

Requests with a valid token are counted per tenant; requests without one per client address
(an address sending garbage tokens would otherwise cost a signature check each, unbounded).
The buckets live in each gateway replica's memory, so with N replicas the ceiling is N times
the configured rate; a shared limiter (NATS KV) would make it exact.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One bucket per key; past ``max_keys`` the least recently seen key is forgotten (as
    if its bucket were full), so keys an attacker can choose cannot grow memory unbounded."""

    def __init__(self, rate_per_second: float, burst: int, *, max_keys: int = 100_000) -> None:
        self._rate = rate_per_second
        self._burst = float(max(burst, 1))
        self._max_keys = max(max_keys, 1)
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    @property
    def tracked(self) -> int:
        """How many keys have a bucket now."""
        return len(self._buckets)

    def take(self, key: str) -> int | None:
        """Take a token; None if allowed, else the seconds to wait before retrying."""
        if not self.enabled:
            return None
        now = time.monotonic()
        # Popped and put back: the dict's order is then least recently seen first.
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            if len(self._buckets) >= self._max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))


class TenantRateLimiter(RateLimiter):
    """Requests with a valid token, per tenant."""

    def acquire(self, tenant_id: str) -> int | None:
        """Take a token; None if allowed, else the seconds to wait before retrying."""
        return self.take(tenant_id)


class ClientRateLimiter(RateLimiter):
    """Requests without a valid token, per client address."""

    def __init__(self, rate_per_second: float, burst: int, *, max_clients: int = 65_536) -> None:
        super().__init__(rate_per_second, burst, max_keys=max_clients)

    def acquire(self, host: str | None) -> int | None:
        """Take a token for the client at ``host``; None if allowed, else seconds to wait."""
        return self.take(client_key(host))


def client_key(host: str | None) -> str:
    """The budget a client address draws on: an IPv6 address's /64 (one host is usually given
    a whole /64, which would otherwise be 2**64 budgets), any other address as it is."""
    if host is None:
        return "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
