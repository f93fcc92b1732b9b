"""Requests without a valid token are rate-limited per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from controlroom_devstack.pytest_plugin import running
from controlroom_gateway.api.rate_limit import ClientRateLimiter
from controlroom_gateway.app import create_app
from controlroom_gateway.settings import GatewaySettings

PROBLEM = "application/problem+json"


@pytest.fixture
async def strict(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    """A gateway allowing each address a burst of 3 unauthenticated requests, then 1 per 2 s."""
    app = create_app(
        settings.model_copy(
            update={
                "rate_limit_unauthenticated_per_second": 0.5,
                "rate_limit_unauthenticated_burst": 3,
            }
        )
    )
    async with running(app):
        yield app


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


async def test_an_address_sending_bad_tokens_gets_429_with_retry_after(
    strict: FastAPI, token: Callable[..., str]
) -> None:
    async with _from(strict, "203.0.113.7") as http:
        bad = {"Authorization": "Bearer not-a-token"}
        codes = [
            (await http.get("/api/v1/runs")).status_code,  # no token at all
            (await http.get("/api/v1/runs", headers=bad)).status_code,
            (await http.post("/api/v1/jobs/run", headers=bad, json={})).status_code,
        ]
        assert codes == [401, 401, 401]
        limited = await http.get("/api/v1/runs", headers=bad)
        assert limited.status_code == 429, limited.text
        assert limited.headers["content-type"] == PROBLEM
        assert int(limited.headers["retry-after"]) >= 1
        # Valid tokens are counted against their tenant, not the address they come from.
        good = {"Authorization": f"Bearer {token()}"}
        assert (await http.get("/api/v1/runs", headers=good)).status_code == 200
        # Health, readiness and the API description are never limited.
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert (await http.get(path)).status_code == 200, path
    async with _from(strict, "198.51.100.9") as elsewhere:
        assert (await elsewhere.get("/api/v1/runs")).status_code == 401


async def test_the_default_unauthenticated_budget_is_generous(
    client: httpx.AsyncClient,
) -> None:
    anonymous = {"Authorization": ""}
    codes = {(await client.get("/api/v1/runs", headers=anonymous)).status_code for _ in range(100)}
    assert codes == {401}


def test_addresses_of_one_ipv6_network_share_a_budget() -> None:
    # One IPv6 host is usually given a whole /64: counting each address on its own would give
    # it 2**64 budgets.
    limiter = ClientRateLimiter(rate_per_second=0.001, burst=2)
    assert limiter.acquire("2001:db8:1:2::1") is None
    assert limiter.acquire("2001:db8:1:2:ffff::9") is None
    assert limiter.acquire("2001:db8:1:2:abcd::3") is not None
    assert limiter.acquire("2001:db8:1:3::1") is None  # another /64
    assert limiter.acquire("192.0.2.1") is None
    assert limiter.acquire(None) is None  # no peer address (a Unix socket): one shared budget


def test_the_limiter_forgets_the_least_recently_seen_addresses_past_its_size() -> None:
    limiter = ClientRateLimiter(rate_per_second=0.001, burst=1, max_clients=2)
    assert limiter.acquire("192.0.2.1") is None
    assert limiter.acquire("192.0.2.2") is None
    assert limiter.acquire("192.0.2.1") is not None  # seen again: now the most recent
    assert limiter.acquire("192.0.2.3") is None  # forgets 192.0.2.2, not 192.0.2.1
    assert limiter.tracked == 2
    assert limiter.acquire("192.0.2.1") is not None
    assert limiter.acquire("192.0.2.2") is None
