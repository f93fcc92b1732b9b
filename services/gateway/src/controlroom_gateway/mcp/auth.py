"""The caller of an MCP request, from its bearer token: what ``api.deps`` does for REST, without
the web framework, with the same verifier and the same rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controlroom_gateway.auth import InvalidToken, Principal, TokenVerifier
from controlroom_gateway.errors import TooManyRequests, Unauthorized, UpstreamUnavailable
from controlroom_gateway.jwks import KeysUnavailable


class TenantLimiter(Protocol):
    def acquire(self, tenant_id: str) -> int | None: ...


class ClientLimiter(Protocol):
    def acquire(self, host: str | None) -> int | None: ...


@dataclass(frozen=True)
class BearerAuth:
    """Turns an ``Authorization`` header into a ``Principal``, or the error REST answers with."""

    verifier: TokenVerifier
    tenants: TenantLimiter
    """Requests with a valid token, per tenant (the REST API's own buckets: one budget)."""
    clients: ClientLimiter
    """Requests without a valid token, per client address."""

    async def principal(self, authorization: str | None, host: str | None) -> Principal:
        """The caller; Unauthorized (401), TooManyRequests (429) or UpstreamUnavailable (503)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._refused(host, "a bearer token is required")
        try:
            principal = await self.verifier.verify(token.strip())
        except InvalidToken as exc:
            raise self._refused(host, f"invalid token: {exc}") from exc
        except KeysUnavailable as exc:
            raise UpstreamUnavailable(f"{exc}; retry later") from exc
        if (wait := self.tenants.acquire(principal.tenant_id)) is not None:
            raise TooManyRequests(
                f"tenant {principal.tenant_id} is over its request rate; retry in {wait}s",
                retry_after=wait,
            )
        return principal

    def _refused(self, host: str | None, detail: str) -> Unauthorized | TooManyRequests:
        if (wait := self.clients.acquire(host)) is not None:
            return TooManyRequests(
                f"too many requests without a valid token from this address; retry in {wait}s",
                retry_after=wait,
            )
        return Unauthorized(detail)
