"""Hostile and misconfigured bearer tokens: every one is a 401 problem, never a 200 or a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from controlroom_devstack.pytest_plugin import running
from controlroom_gateway.app import create_app
from controlroom_gateway.settings import GatewaySettings

from .conftest import SECRET
from .jwks_server import JwksServer, SigningKey, serving

PROBLEM = "application/problem+json"
# A payload that would make its bearer the admin of another tenant.
ESCALATED = {"tenant_id": "globex", "sub": "mallory", "role": "admin"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segment(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data).encode())


def _later() -> int:
    return int(time.time()) + 600


def _hs256(claims: dict[str, Any], secret: str | bytes = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims | {"exp": claims.get("exp", _later())}, secret, algorithm=alg)


def _tampered(token: str) -> str:
    """The same header and signature around a payload naming another tenant and role."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment(ESCALATED | {'exp': _later()})}.{signature}"


def _alg_none(alg: str) -> str:
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(ESCALATED | {'exp': _later()})}."


def _hmac_with_public_key(public_pem: bytes) -> str:
    """The algorithm-confusion attack: HS256 'signed' with the issuer's public RSA key."""
    signing_input = (
        f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(ESCALATED | {'exp': _later()})}"
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _hs512_with_the_right_secret() -> str:
    with warnings.catch_warnings():
        # PyJWT warns that the test secret is short for SHA-512; the gateway never uses HS512.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return _hs256(ESCALATED, alg="HS512")


def _valid() -> str:
    return _hs256({"tenant_id": "acme", "sub": "tester", "role": "viewer"})


FORGERIES: dict[str, Callable[[], str]] = {
    "alg none": lambda: _alg_none("none"),
    "alg None": lambda: _alg_none("None"),
    "alg NONE": lambda: _alg_none("NONE"),
    "signature stripped": lambda: _valid().rsplit(".", 1)[0] + ".",
    "re-signed with another secret": lambda: _hs256(
        ESCALATED, "another-secret-another-secret-1234"
    ),
    "payload swapped, not re-signed": lambda: _tampered(_valid()),
    "expired": lambda: _hs256(
        {"tenant_id": "acme", "sub": "tester", "role": "viewer", "exp": int(time.time()) - 60}
    ),
    "right secret, algorithm not allowed": _hs512_with_the_right_secret,
    "not a jwt": lambda: "not-a-token",
    "empty segments": lambda: "..",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=list(FORGERIES))
async def test_forged_shared_secret_tokens_are_401_problems(
    client: httpx.AsyncClient, forge: Callable[[], str]
) -> None:
    response = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {forge()}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    async with serving() as server:
        yield server


async def test_forged_rs256_tokens_are_401_problems(
    settings: GatewaySettings, jwks: JwksServer
) -> None:
    issuer, mallory = SigningKey("issuer"), SigningKey("mallory")
    jwks.publish(issuer)
    jwks.other_keys = [mallory.jwk]
    public_pem = issuer.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with_jku = jwt.encode(
        ESCALATED | {"exp": _later()},
        mallory.private,
        algorithm="RS256",
        headers={"kid": "mallory", "jku": jwks.other_url},
    )
    forgeries = {
        "re-signed with another key, the issuer's kid": mallory.sign(kid="issuer", **ESCALATED),
        "payload swapped, not re-signed": _tampered(issuer.sign()),
        "key named by the token's own jku": with_jku,
        "HS256 signed with the issuer's public key": _hmac_with_public_key(public_pem),
        "expired": issuer.sign(exp=int(time.time()) - 60),
        "no kid": jwt.encode(
            {"tenant_id": "acme", "sub": "x", "role": "viewer", "exp": _later()},
            issuer.private,
            algorithm="RS256",
        ),
    }
    app = create_app(settings.model_copy(update={"jwt_jwks_url": jwks.url}))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            good = await http.get(
                "/api/v1/runs", headers={"Authorization": f"Bearer {issuer.sign()}"}
            )
            assert good.status_code == 200
            for name, forged in forgeries.items():
                response = await http.get(
                    "/api/v1/runs", headers={"Authorization": f"Bearer {forged}"}
                )
                assert response.status_code == 401, (name, response.text)
                assert response.headers["content-type"] == PROBLEM, name


async def test_issuer_and_audience_are_verified_when_configured(
    settings: GatewaySettings,
) -> None:
    claims = {"tenant_id": "acme", "sub": "tester", "role": "viewer"}
    right: dict[str, Any] = {"iss": "https://idp.example", "aud": "controlroom"}
    cases: dict[str, tuple[dict[str, Any], int]] = {
        "both right": (right, 200),
        "audience among several": (right | {"aud": ["other", "controlroom"]}, 200),
        "no issuer": ({"aud": "controlroom"}, 401),
        "another issuer": (right | {"iss": "https://evil.example"}, 401),
        "no audience": ({"iss": "https://idp.example"}, 401),
        "another audience": (right | {"aud": "another-service"}, 401),
    }
    app = create_app(
        settings.model_copy(
            update={"jwt_issuer": "https://idp.example", "jwt_audience": "controlroom"}
        )
    )
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            for name, (extra, expected) in cases.items():
                token = _hs256(claims | extra)
                response = await http.get(
                    "/api/v1/runs", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == expected, (name, response.text)


async def test_without_issuer_and_audience_settings_neither_is_required(
    client: httpx.AsyncClient,
) -> None:
    claims = {"tenant_id": "acme", "sub": "tester", "role": "viewer"}
    plain = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {_valid()}"})
    assert plain.status_code == 200
    any_issuer = _hs256(claims | {"iss": "https://anyone.example"})
    response = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {any_issuer}"})
    assert response.status_code == 200
    # A token addressed to some audience was meant for someone: without an audience of our own
    # to compare it with, it is refused (PyJWT's rule, kept on purpose).
    addressed = _hs256(claims | {"aud": "another-service"})
    response = await client.get("/api/v1/runs", headers={"Authorization": f"Bearer {addressed}"})
    assert response.status_code == 401


@pytest.mark.parametrize("secret", ["short", "x" * 31, "é" * 15 + "x"])
def test_a_shared_secret_under_32_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="CONTROLROOM_JWT_SECRET.*32 bytes"):
        GatewaySettings(jwt_secret=secret)


def test_a_32_byte_shared_secret_is_accepted() -> None:
    assert GatewaySettings(jwt_secret="é" * 16).jwt_secret.get_secret_value() == "é" * 16


def test_the_gateway_refuses_to_start_with_a_short_secret() -> None:
    environment = os.environ | {"CONTROLROOM_JWT_SECRET": "too-short"}
    result = subprocess.run(
        [sys.executable, "-m", "controlroom_gateway", "token", "--tenant", "acme"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout
    assert "CONTROLROOM_JWT_SECRET" in result.stderr
    assert "32 bytes" in result.stderr
