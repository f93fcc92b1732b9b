"""The API while its Postgres is down: 503 problem+json with Retry-After, never a 500, and
back to normal once Postgres is, without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from controlroom_devstack.infra import Postgres
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.settings import GatewaySettings

from .test_api import PROBLEM, job


@pytest.fixture
async def gateway(settings: GatewaySettings, own_postgres: Postgres) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"database_url": own_postgres.url()}))
    async with running(app):
        yield app


async def test_while_postgres_is_down_the_api_answers_503_problems_then_recovers(
    client: httpx.AsyncClient, own_postgres: Postgres
) -> None:
    run_id = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]

    await asyncio.to_thread(own_postgres.stop)
    try:
        for response in (
            await client.post("/api/v1/jobs/run", json=job()),
            await client.post(
                "/api/v1/jobs/run", json=job(), headers={"Idempotency-Key": "outage-1"}
            ),
            await client.get(f"/api/v1/runs/{run_id}"),
            await client.get("/api/v1/runs"),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM
            assert int(response.headers["retry-after"]) > 0
        ready = await client.get("/readyz")
        assert ready.status_code == 503
    finally:
        await asyncio.to_thread(own_postgres.start)

    async def accepted() -> bool:
        response = await client.post("/api/v1/jobs/run", json=job())
        return response.status_code == 202

    await eventually(accepted, timeout=30, what="submissions accepted again")
    assert (await client.get(f"/api/v1/runs/{run_id}")).status_code == 200
