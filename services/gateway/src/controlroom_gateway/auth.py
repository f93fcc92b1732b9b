"""Bearer JWT (HS256) authentication and role checks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import IntEnum

import jwt

ALGORITHM = "HS256"
RS256 = "RS256"
REQUIRED_CLAIMS = ["exp", "sub", "tenant_id", "role"]


class Role(IntEnum):
    """Constitution section 6.2; a role includes every permission of the roles below it."""

    viewer = 1
    operator = 2
    admin = 3


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    subject: str
    role: Role


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or signed with another secret."""


class TokenVerifier:
    """HS256 with the shared secret; RS256 against the keys at a JWKS URL when one is set.

    The algorithm is taken from a fixed list, never trusted from the token: ``alg: none`` and
    any other algorithm are refused. A token that verified once is remembered until it
    expires, so a client reusing its token (every client does) costs a dictionary lookup
    instead of a signature check and two JSON decodes per request.
    """

    def __init__(self, secret: str, jwks_url: str | None = None, *, remember: int = 4096) -> None:
        self._secret = secret
        # PyJWKClient caches the key set and refetches it when an unknown kid appears.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._remember = remember
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == RS256 and self._jwks is not None:
                # A JWKS fetch is blocking network I/O: keep it off the event loop.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                claims = jwt.decode(
                    token, signing_key.key, algorithms=[RS256], options={"require": REQUIRED_CLAIMS}
                )
            else:
                claims = jwt.decode(
                    token,
                    self._secret,
                    algorithms=[ALGORITHM],
                    options={"require": REQUIRED_CLAIMS},
                )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        principal = _principal_from(claims)
        self._keep(token, principal, float(claims["exp"]))
        return principal

    def _keep(self, token: str, principal: Principal, expires_at: float) -> None:
        if len(self._verified) >= self._remember:
            # Oldest first (dicts keep insertion order); expired entries go with it in time.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires_at)


def _principal_from(claims: dict[str, object]) -> Principal:
    tenant, subject, role = claims["tenant_id"], claims["sub"], claims["role"]
    if not isinstance(tenant, str) or not tenant or not isinstance(subject, str):
        raise InvalidToken("tenant_id and sub must be non-empty strings")
    try:
        return Principal(tenant_id=tenant, subject=subject, role=Role[str(role)])
    except KeyError as exc:
        raise InvalidToken(f"unknown role {role!r}") from exc


def mint_token(secret: str, *, tenant_id: str, subject: str, role: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "tenant_id": tenant_id,
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
