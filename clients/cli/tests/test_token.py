"""``controlroom token`` signs what ``python -m controlroom_gateway token`` signs."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest

from controlroom_cli.devtoken import claims
from controlroom_gateway.auth import mint_token

SECRET = "unit-secret-unit-secret-unit-secret-unit"
Cli = Callable[..., tuple[int, str, str]]


def test_the_claims_are_the_gateways() -> None:
    env = {"CONTROLROOM_JWT_ISSUER": "https://issuer.test", "CONTROLROOM_JWT_AUDIENCE": "cr"}
    ours = claims("acme", "viewer", "ci", 600, env, now=1_800_000_000)
    theirs = jwt.decode(
        mint_token(
            SECRET,
            tenant_id="acme",
            subject="ci",
            role="viewer",
            ttl_seconds=600,
            issuer="https://issuer.test",
            audience="cr",
        ),
        options={"verify_signature": False},
    )
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in ("iat", "exp")} == {
        k: v for k, v in theirs.items() if k not in ("iat", "exp")
    }
    assert ours["exp"] - ours["iat"] == theirs["exp"] - theirs["iat"] == 600


def test_the_token_is_hs256_with_the_secret(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_JWT_SECRET", SECRET)
    code, out, _ = cli("token", "--tenant", "acme", "--role", "admin")
    assert code == 0
    decoded = jwt.decode(out.strip(), SECRET, algorithms=["HS256"])
    assert (decoded["tenant_id"], decoded["role"], decoded["sub"]) == ("acme", "admin", "developer")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "error: CONTROLROOM_JWT_SECRET is not set"),
        ("short", "error: CONTROLROOM_JWT_SECRET must be at least 32 bytes for HS256 (it is 5)"),
    ],
)
def test_a_missing_or_short_secret_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, secret: str | None, message: str
) -> None:
    if secret is None:
        monkeypatch.delenv("CONTROLROOM_JWT_SECRET", raising=False)
    else:
        monkeypatch.setenv("CONTROLROOM_JWT_SECRET", secret)
    code, out, err = cli("token", "--tenant", "acme")
    assert (code, out) == (4, "") and err.startswith(message)
