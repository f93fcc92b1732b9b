"""The RS256 keys an issuer publishes at a JWKS URL, kept fresh.

The set is refetched when the copy held is older than its TTL, so a key the issuer withdraws
stops working within the TTL, and when a token names a kid the copy lacks, so a key the issuer
has just added works at once. Either way there is at most one fetch per cooldown: tokens with
made-up kids cannot make the gateway hammer the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)

RS256 = "RS256"


class KeyNotFound(Exception):
    """No key with the token's kid in the issuer's set, even after looking again."""


class KeysUnavailable(Exception):
    """The JWKS URL could not be read, and no earlier copy of the set is held."""


class JwksKeys:
    """The signing keys at one JWKS URL, by kid."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float,
        cooldown_seconds: float,
        timeout_seconds: float = 5.0,
    ) -> None:
        # PyJWT's client is used only to fetch: it refuses URLs other than http(s) (here, at
        # start) and does not follow redirects. Its caches are off: an lru_cache of keys that
        # never expires is the bug this module replaces.
        self._client = jwt.PyJWKClient(
            url, cache_keys=False, cache_jwk_set=False, timeout=timeout_seconds
        )
        self._ttl = ttl_seconds
        self._cooldown = cooldown_seconds
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = -math.inf  # monotonic; the last fetch that succeeded
        self._attempted_at = -math.inf  # monotonic; the last fetch, whatever came of it
        # One fetch at a time: requests arriving while it runs wait for its result instead of
        # each starting their own.
        self._lock = asyncio.Lock()

    def fresh_for(self) -> float:
        """Seconds until the copy held is due to be refetched (0 if it is due now)."""
        return max(0.0, self._fetched_at + self._ttl - time.monotonic())

    async def key(self, kid: str) -> PyJWK:
        """The RS256 key named ``kid``; fetches the set first when it is due or lacks ``kid``."""
        if self._needs_fetch(kid):
            attempted = self._attempted_at
            async with self._lock:
                # A fetch made while this request waited for the lock answers it too, and so
                # does one under way when it came (its cooldown has not passed).
                if self._attempted_at == attempted and self._cooled_down():
                    await self._fetch()
        if self._keys is None:
            raise KeysUnavailable("the issuer's keys (JWKS) cannot be read")
        if (key := self._keys.get(kid)) is None:
            raise KeyNotFound(f"no key {kid!r} in the issuer's key set")
        return key

    def _needs_fetch(self, kid: str) -> bool:
        return self._keys is None or kid not in self._keys or self.fresh_for() == 0

    def _cooled_down(self) -> bool:
        return time.monotonic() - self._attempted_at >= self._cooldown

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            # urllib blocks: a worker thread keeps the event loop serving everyone else.
            data = await asyncio.to_thread(self._client.fetch_data)
            keys = _rs256_keys(data)
        except (jwt.PyJWTError, OSError, ValueError) as exc:
            # The copy held (if any) stays in use: an issuer's outage must not lock out every
            # user whose key it already published. The next try waits for the cooldown.
            log.warning("JWKS fetch failed; keeping the keys held", extra={"error": str(exc)})
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("JWKS fetched", extra={"kids": sorted(keys)})


def _rs256_keys(data: dict[str, Any]) -> dict[str, PyJWK]:
    """The set's RS256 signature keys by kid; an empty set is a set (the issuer withdrew all)."""
    listed = data.get("keys")
    if not isinstance(listed, list):
        raise ValueError("the JWKS has no list of keys")
    keys: dict[str, PyJWK] = {}
    for entry in listed:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        try:
            key = PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key of a type we cannot use must not hide the others
        if isinstance(kid, str) and key.algorithm_name == RS256:
            keys[kid] = key
    return keys
