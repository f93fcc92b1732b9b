"""The queue through the REST API: the gateway shows what the scheduler decides and explains.

The gateway and the scheduler run in-process on the session's real nats-server and a fresh
Postgres database; a stand-in executor sends heartbeats only (see its module), so runs are
admitted but nothing executes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app as gateway_app
from controlroom_gateway.auth import mint_token
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_scheduler.app import create_app as scheduler_app
from controlroom_scheduler.settings import SchedulerSettings

SECRET = "queue-api-secret-queue-api-secret-32"


def _headers(tenant: str = "acme", role: str = "operator") -> dict[str, str]:
    token = mint_token(SECRET, tenant_id=tenant, subject="ops", role=role, ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


def job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "diagram_export",
        "spec": {"text": "export", "inputs": {}},
        "code": {"files": [{"path": "main.py", "content": "print(1)"}]},
        "created_by": "ci",
    }
    return body | overrides


@pytest.fixture
async def api(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "database_url": database_url}
    gateway = gateway_app(
        GatewaySettings(
            jwt_secret=SECRET, object_store=ObjectStoreSettings(directory=tmp_path), **common
        )
    )
    scheduler = SchedulerSettings(
        tenant_max_concurrent=1,
        tenant_limits={"globex": 5},
        dispatch_interval_seconds=0.2,
        **common,
    )
    async with running(scheduler_app(scheduler)), running(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=_headers()
        ) as client:
            yield client


async def _view_when(
    api: httpx.AsyncClient, run_id: str, ready: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
        return view if view.get(ready) else None

    return await eventually(check, what=f"{ready} of run {run_id}")


async def test_without_an_executor_a_run_waits_and_says_why(api: httpx.AsyncClient) -> None:
    run_id = (await api.post("/api/v1/jobs/run", json=job(lane="B"))).json()["run_id"]
    view = await _view_when(api, run_id, "lane")
    view = await _view_when(api, run_id, "queue_reason")
    assert view["status"] == "queued" and view["queue_reason"] == "no_executor"
    assert view["queue_position"] == 1 and view["lane"] == "B"
    assert view["max_attempts"] == 3 and view["timeout_seconds"] == 600
    listed = (await api.get("/api/v1/runs")).json()["items"]
    assert [(r["run_id"], r["queue_reason"]) for r in listed] == [(run_id, "no_executor")]


async def test_behind_its_cap_a_run_says_so_and_limits_show_the_tenants_own(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    executor = StandInExecutor(nats_url)
    await executor.start()
    try:
        first = (await api.post("/api/v1/jobs/run", json=job())).json()["run_id"]
        await _view_when(api, first, "attempts")  # dispatched: its first attempt is listed
        second = (await api.post("/api/v1/jobs/run", json=job())).json()["run_id"]
        view = await _view_when(api, second, "queue_reason")
        assert (view["queue_reason"], view["queue_position"]) == ("tenant_cap_reached", 1)
        attempt = (await api.get(f"/api/v1/runs/{first}")).json()["attempts"][0]
        assert (attempt["attempt"], attempt["status"]) == (1, "dispatched")

        limits = (await api.get("/api/v1/limits")).json()
        assert (limits["max_concurrent_runs"], limits["running"], limits["queued"]) == (1, 1, 1)
        assert limits["lanes"]["A"] == {"max_concurrent_runs": None, "running": 1, "queued": 1}
        other = (await api.get("/api/v1/limits", headers=_headers("globex", "viewer"))).json()
        assert (other["max_concurrent_runs"], other["running"], other["queued"]) == (5, 0, 0)
        foreign = await api.get(f"/api/v1/runs/{second}", headers=_headers("globex"))
        assert foreign.status_code == 404
    finally:
        await executor.stop()
