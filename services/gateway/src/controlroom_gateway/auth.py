"""Bearer JWT (HS256) authentication and role checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

import jwt

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


def decode_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
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
