"""FastAPI dependencies as Annotated aliases.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
and those hand-offs cost more than the dependencies themselves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlroom_gateway.api.rate_limit import ClientRateLimiter, TenantRateLimiter
from controlroom_gateway.auth import InvalidToken, Principal, Role, TokenVerifier
from controlroom_gateway.errors import (
    Forbidden,
    GatewayError,
    TooManyRequests,
    Unauthorized,
    UpstreamUnavailable,
)
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jwks import KeysUnavailable

_bearer = HTTPBearer(
    auto_error=False,
    description="JWT (HS256, or RS256 from the JWKS) with tenant_id, sub, role, exp",
)


async def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]
"""The application services the use cases take (``gateway.Gateway``)."""


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _refused(request, "a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise _refused(request, f"invalid token: {exc}") from exc
    except KeysUnavailable as exc:
        # The token may well be good: 503 tells the client to retry rather than discard it.
        raise UpstreamUnavailable(f"{exc}; retry later") from exc
    limiter: TenantRateLimiter = request.app.state.rate_limiter
    if (wait := limiter.acquire(principal.tenant_id)) is not None:
        raise TooManyRequests(
            f"tenant {principal.tenant_id} is over its request rate; retry in {wait}s",
            retry_after=wait,
        )
    return principal


def _refused(request: Request, detail: str) -> GatewayError:
    """401, or 429 once the client's address is over its budget of requests without a valid
    token (requests with one are counted against their tenant instead)."""
    limiter: ClientRateLimiter = request.app.state.client_rate_limiter
    if (wait := limiter.acquire(request.client.host if request.client else None)) is not None:
        return TooManyRequests(
            f"too many requests without a valid token from this address; retry in {wait}s",
            retry_after=wait,
        )
    return Unauthorized(detail)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


async def _operator(principal: CurrentPrincipal) -> Principal:
    if principal.role < Role.operator:
        raise Forbidden(f"role {principal.role.name} may not submit jobs; operator required")
    return principal


CurrentOperator = Annotated[Principal, Depends(_operator)]


async def _admin(principal: CurrentPrincipal) -> Principal:
    if principal.role < Role.admin:
        raise Forbidden(f"role {principal.role.name} may not do this; admin required")
    return principal


CurrentAdmin = Annotated[Principal, Depends(_admin)]
