from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from controlroom_devstack.pytest_plugin import running
from controlroom_gateway.app import create_app
from controlroom_gateway.auth import mint_token
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.objectstore import ObjectStoreSettings

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def settings(nats_url: str, database_url: str, tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        object_store=ObjectStoreSettings(directory=tmp_path / "objects"),
        max_artifact_bytes=256 * 1024,
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        jwt_secret=SECRET,
        max_body_bytes=64 * 1024,
        max_code_file_bytes=16 * 1024,
        max_code_total_bytes=32 * 1024,
    )


@pytest.fixture
def token() -> Callable[..., str]:
    def _token(tenant: str = "acme", role: str = "operator", ttl: int = 600) -> str:
        return mint_token(SECRET, tenant_id=tenant, subject="tester", role=role, ttl_seconds=ttl)

    return _token


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    """The gateway, started in-process (its runtime is ``gateway.state.runtime``)."""
    app = create_app(settings)
    async with running(app):
        yield app


@pytest.fixture
async def client(gateway: FastAPI, token: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {token()}"},
    ) as http:
        yield http
