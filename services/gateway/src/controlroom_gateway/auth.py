"""Bearer JWT (HS256, and RS256 against a JWKS) authentication and role checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import jwt
from jwt import PyJWK

from controlroom_gateway.jwks import RS256, JwksKeys, KeyNotFound

ALGORITHM = "HS256"
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
    any other algorithm are refused, and so is a key named by the token itself (``jku``,
    ``x5u``). ``iss`` and ``aud`` are checked when configured. A token that verified once is
    remembered until it expires (an RS256 one no longer than the key set it was checked
    against is fresh), so a client reusing its token (every client does) costs a dictionary
    lookup instead of a signature check and two JSON decodes per request.
    """

    def __init__(
        self,
        secret: str,
        jwks_url: str | None = None,
        *,
        jwks_ttl_seconds: float = 300.0,
        jwks_cooldown_seconds: float = 10.0,
        issuer: str | None = None,
        audience: str | None = None,
        remember: int = 4096,
    ) -> None:
        self._secret = secret
        self._jwks = (
            JwksKeys(jwks_url, ttl_seconds=jwks_ttl_seconds, cooldown_seconds=jwks_cooldown_seconds)
            if jwks_url
            else None
        )
        self._issuer = issuer
        self._audience = audience
        self._remember = remember
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The token's principal; InvalidToken if it is not good, KeysUnavailable if an RS256
        token cannot be checked because the issuer's keys cannot be read."""
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == RS256 and self._jwks is not None:
                claims = self._decode(token, await self._jwks_key(self._jwks, header), RS256)
                # A withdrawn key's tokens must stop working when the set is next read.
                until = min(float(claims["exp"]), time.time() + self._jwks.fresh_for())
            else:
                claims = self._decode(token, self._secret, ALGORITHM)
                until = float(claims["exp"])
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        principal = _principal_from(claims)
        self._keep(token, principal, until)
        return principal

    @staticmethod
    async def _jwks_key(jwks: JwksKeys, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("an RS256 token must name its key (kid)")
        try:
            return await jwks.key(kid)
        except KeyNotFound as exc:
            raise InvalidToken(str(exc)) from exc

    def _decode(self, token: str, key: str | PyJWK, algorithm: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"require": REQUIRED_CLAIMS},
            issuer=self._issuer,
            audience=self._audience,
        )
        return claims

    def _keep(self, token: str, principal: Principal, until: float) -> None:
        if until <= time.time():
            return
        if len(self._verified) >= self._remember:
            # Oldest first (dicts keep insertion order); expired entries go with it in time.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, until)


def _principal_from(claims: dict[str, object]) -> Principal:
    tenant, subject, role = claims["tenant_id"], claims["sub"], claims["role"]
    if not isinstance(tenant, str) or not tenant or not isinstance(subject, str):
        raise InvalidToken("tenant_id and sub must be non-empty strings")
    try:
        return Principal(tenant_id=tenant, subject=subject, role=Role[str(role)])
    except KeyError as exc:
        raise InvalidToken(f"unknown role {role!r}") from exc


def mint_token(
    secret: str,
    *,
    tenant_id: str,
    subject: str,
    role: str,
    ttl_seconds: int,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token; give ``issuer`` and ``audience`` when the gateway is set to check them."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "tenant_id": tenant_id,
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
