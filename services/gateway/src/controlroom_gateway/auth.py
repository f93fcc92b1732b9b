"""Bearer JWT (HS256) authentication and role checks."""

from __future__ import annotations

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
    any other algorithm are refused.
    """

    def __init__(self, secret: str, jwks_url: str | None = None) -> None:
        self._secret = secret
        # PyJWKClient caches the key set and refetches it when an unknown kid appears.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None

    def verify(self, token: str) -> Principal:
        """Blocking (a JWKS fetch may happen): call it from a worker thread."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == RS256 and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token, key, algorithms=[RS256], options={"require": REQUIRED_CLAIMS}
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
        return _principal_from(claims)


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
