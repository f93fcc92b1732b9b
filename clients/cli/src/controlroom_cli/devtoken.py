"""``token``: a development bearer token, signed with ``CONTROLROOM_JWT_SECRET`` the way
``python -m controlroom_gateway token`` signs it (same claims, HS256), without the gateway."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.errors import ConfigProblem, UsageProblem

ROLES = ("viewer", "operator", "admin")
MIN_SECRET_BYTES = 32
"""RFC 7518 3.2: an HS256 key is at least as long as the hash; the gateway refuses shorter."""


def claims(
    tenant: str, role: str, subject: str, ttl: int, env: Mapping[str, str], now: int | None = None
) -> dict[str, Any]:
    """The gateway's claims: tenant_id, sub, role, iat, exp; iss and aud when the gateway is
    configured to check them (CONTROLROOM_JWT_ISSUER, CONTROLROOM_JWT_AUDIENCE)."""
    issued = int(time.time()) if now is None else now
    body: dict[str, Any] = {
        "tenant_id": tenant,
        "sub": subject,
        "role": role,
        "iat": issued,
        "exp": issued + ttl,
    }
    if issuer := env.get("CONTROLROOM_JWT_ISSUER"):
        body["iss"] = issuer
    if audience := env.get("CONTROLROOM_JWT_AUDIENCE"):
        body["aud"] = audience
    return body


def secret(env: Mapping[str, str]) -> str:
    value = env.get("CONTROLROOM_JWT_SECRET", "")
    if not value.strip():
        raise ConfigProblem("CONTROLROOM_JWT_SECRET is not set: the token is signed with it")
    if (length := len(value.encode())) < MIN_SECRET_BYTES:
        raise ConfigProblem(
            f"CONTROLROOM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes for HS256 "
            f"(it is {length})"
        )
    return value


def token(
    tenant: Annotated[
        str,
        typer.Option(metavar="TENANT", help="The tenant the token acts for.", show_default=False),
    ],
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="viewer, operator or admin.")
    ] = "operator",
    sub: Annotated[str, typer.Option(metavar="SUBJECT", help="The subject (who).")] = "developer",
    ttl: Annotated[
        int, typer.Option(min=1, metavar="SECONDS", help="Seconds until it expires.")
    ] = 24 * 3600,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print {token, claims} as JSON.")
    ] = False,
) -> None:
    """Print a development token signed with $CONTROLROOM_JWT_SECRET (HS256).

    For development and tests: production tokens come from your identity provider.
    Usage: export CONTROLROOM_TOKEN=$(controlroom token --tenant acme)
    """
    if role not in ROLES:
        raise UsageProblem(f"--role {role!r}: one of {', '.join(ROLES)}")
    import jwt

    signed_claims = claims(tenant, role, sub, ttl, os.environ)
    signed = jwt.encode(signed_claims, secret(os.environ), algorithm="HS256")
    if json_out:
        render.emit_json({"token": signed, "claims": signed_claims})
    else:
        render.out(signed)
