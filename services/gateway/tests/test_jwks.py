"""RS256 tokens against a real JWKS URL whose keys change while the gateway runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually, until
from controlroom_gateway.app import create_app
from controlroom_gateway.settings import GatewaySettings

from .jwks_server import JwksServer, SigningKey, serving

PROBLEM = "application/problem+json"


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    async with serving() as server:
        yield server


@contextlib.asynccontextmanager
async def gateway(settings: GatewaySettings, **update: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=update))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def status(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_key_removed_from_the_jwks_stops_working_within_the_ttl(
    settings: GatewaySettings, jwks: JwksServer
) -> None:
    old, new = SigningKey("old"), SigningKey("new")
    jwks.publish(old)
    token = old.sign()
    async with gateway(
        settings, jwt_jwks_url=jwks.url, jwt_jwks_ttl_seconds=0.5, jwt_jwks_cooldown_seconds=0.1
    ) as http:
        assert await status(http, token) == 200
        jwks.publish(new)  # the issuer rotates: the old key is withdrawn

        async def refused() -> bool:
            return await status(http, token) == 401

        # The very token that was accepted (and remembered) is refused once the set is refetched.
        await eventually(refused, timeout=10, what="the withdrawn key refused")
        assert await status(http, new.sign()) == 200


async def test_a_token_naming_a_new_kid_makes_the_gateway_refetch_before_the_ttl(
    settings: GatewaySettings, jwks: JwksServer
) -> None:
    first, rotated = SigningKey("first"), SigningKey("rotated")
    jwks.publish(first)
    async with gateway(
        settings, jwt_jwks_url=jwks.url, jwt_jwks_ttl_seconds=3600, jwt_jwks_cooldown_seconds=0.1
    ) as http:
        assert await status(http, first.sign()) == 200
        jwks.publish(first, rotated)

        async def accepted() -> bool:
            return await status(http, rotated.sign()) == 200

        # The TTL is an hour: only the unknown kid can have made the gateway look again.
        await eventually(accepted, timeout=10, what="the new kid accepted")
        assert jwks.fetches >= 2


async def test_made_up_kids_cannot_make_the_gateway_hammer_the_jwks_url(
    settings: GatewaySettings, jwks: JwksServer
) -> None:
    key = SigningKey("real")
    jwks.publish(key)
    async with gateway(
        settings, jwt_jwks_url=jwks.url, jwt_jwks_ttl_seconds=3600, jwt_jwks_cooldown_seconds=3600
    ) as http:
        # Concurrent first requests share one fetch.
        codes = await asyncio.gather(*(status(http, key.sign()) for _ in range(10)))
        assert codes == [200] * 10
        garbage = [key.sign(kid=f"made-up-{n}") for n in range(30)]
        codes = await asyncio.gather(*(status(http, token) for token in garbage))
        assert codes == [401] * 30
        assert jwks.fetches == 1


async def test_the_last_key_set_is_kept_while_the_jwks_url_fails(
    settings: GatewaySettings, jwks: JwksServer
) -> None:
    key = SigningKey("kept")
    jwks.publish(key)
    async with gateway(
        settings, jwt_jwks_url=jwks.url, jwt_jwks_ttl_seconds=0.2, jwt_jwks_cooldown_seconds=0.1
    ) as http:
        assert await status(http, key.sign()) == 200
        jwks.failing = True

        async def tried_again() -> bool:
            # A new token each time: a remembered one would not need the keys at all.
            return await status(http, key.sign()) == 200 and jwks.failed_fetches >= 2

        # An issuer outage must not lock every SSO user out: past the TTL, with every refetch
        # failing, the key set last read keeps verifying.
        await eventually(tried_again, timeout=10, what="two failed refetches")


async def test_a_jwks_url_that_cannot_be_read_answers_503_not_401(
    settings: GatewaySettings, jwks: JwksServer, token: Any
) -> None:
    key = SigningKey("unreachable")
    jwks.publish(key)
    jwks.failing = True
    async with gateway(settings, jwt_jwks_url=jwks.url) as http:
        response = await http.get("/api/v1/runs", headers={"Authorization": f"Bearer {key.sign()}"})
        # The token may well be good: the client should retry, not throw it away.
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM
        assert await status(http, token()) == 200  # shared-secret tokens need no JWKS
        assert (await http.get("/healthz")).status_code == 200


async def test_a_slow_jwks_url_does_not_hold_up_other_requests(
    settings: GatewaySettings, jwks: JwksServer, token: Any
) -> None:
    key = SigningKey("slow")
    jwks.publish(key)
    release = asyncio.Event()

    async def hold() -> None:
        await release.wait()

    jwks.before_answer = hold
    async with gateway(settings, jwt_jwks_url=jwks.url) as http:
        waiting = asyncio.create_task(status(http, key.sign()))
        await until(lambda: jwks.fetches == 1, what="the JWKS fetch under way")
        # While the fetch hangs, the event loop still serves everyone else.
        assert await status(http, token()) == 200
        assert (await http.get("/healthz")).status_code == 200
        release.set()
        assert await waiting == 200
