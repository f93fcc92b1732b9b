"""GET /api/v1/routing shows the routing matrix the gateway loaded; a run's view shows the
image its attempt started in (against a real nats-server and Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from controlroom_contracts.events import RunStarted
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.routing_file import RoutingFileError
from controlroom_scheduler.app import create_app as scheduler_app
from controlroom_scheduler.settings import SchedulerSettings

PROBLEM = "application/problem+json"
IMAGE = "localhost/controlroom-python:1"
FIVE = {"spark_etl", "diagram_export", "schema_migration", "kb_catalog", "code_validation"}


async def test_a_viewer_reads_the_default_matrix_every_job_type_on_docker(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    viewer = {"Authorization": f"Bearer {token(role='viewer')}"}
    response = await client.get("/api/v1/routing", headers=viewer)
    assert response.status_code == 200
    job_types: dict[str, dict[str, Any]] = response.json()["job_types"]
    assert set(job_types) == FIVE
    # The embedded profile (the default): no cluster, so every job type runs on docker.
    assert {route["executor"] for route in job_types.values()} == {"docker"}
    spark = job_types["spark_etl"]
    assert set(spark) == {
        "executor",
        "image",
        "commands",
        "memory_bytes",
        "cpus",
        "pids",
        "tmp_bytes",
        "workspace_bytes",
        "network",
        "timeout_seconds",
        "retry",
    }
    assert spark["image"] == IMAGE and spark["network"] == "none"
    assert spark["commands"] == {".py": ["python3", "-I"], ".sh": ["sh"]}
    assert spark["memory_bytes"] == 2 << 30 and spark["retry"]["max_attempts"] == 3


async def test_routing_without_a_token_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/routing", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_routing_is_documented_with_its_model_and_problem_errors(
    client: httpx.AsyncClient,
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/api/v1/routing"]["get"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/RoutingView")
    assert PROBLEM in operation["responses"]["401"]["content"]


@pytest.fixture
async def production_client(
    settings: GatewaySettings, tmp_path: Path, token: Callable[..., str]
) -> AsyncIterator[httpx.AsyncClient]:
    matrix = tmp_path / "routing.yaml"
    matrix.write_text(
        "job_types:\n"
        "  spark_etl: {executor: k8s, image: 'example.org/spark:3', commands: {'.py': [python3]},"
        " memory: 512Mi}\n"
        "  kb_catalog: {executor: docker, image: 'example.org/kb:1', commands: {'.sh': [sh]}}\n"
    )
    configured = settings.model_copy(
        update={
            "routing_file": matrix,
            "routing_profile": "production",
            "routes": {"kb_catalog": "k8s"},
        }
    )
    app = create_app(configured)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {token(role='viewer')}"},
        ) as http:
            yield http


async def test_the_matrix_shown_is_the_configured_file_with_profile_and_overrides(
    production_client: httpx.AsyncClient,
) -> None:
    job_types = (await production_client.get("/api/v1/routing")).json()["job_types"]
    assert {name: r["executor"] for name, r in job_types.items()} == {
        "spark_etl": "k8s",
        "kb_catalog": "k8s",
    }
    assert job_types["spark_etl"]["memory_bytes"] == 512 << 20
    assert job_types["kb_catalog"]["timeout_seconds"] is None  # the deployment's default


def test_a_bad_routing_file_stops_the_gateway_before_it_starts(
    settings: GatewaySettings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("job_types:\n  spark_etl: {executor: k8s, image: x, commands: {}, cpu: 2}\n")
    with pytest.raises(RoutingFileError) as raised:
        create_app(settings.model_copy(update={"routing_file": bad}))
    assert str(bad) in str(raised.value) and raised.value.fields == ["job_types.spark_etl.cpu"]


async def test_validate_names_where_the_job_would_run_as_the_scheduler_routes_it(
    client: httpx.AsyncClient, nats_url: str, database_url: str
) -> None:
    body = {
        "job_type": "kb_catalog",
        "spec": {"text": "catalog"},
        "code": {"files": [{"path": "main.sh", "content": "echo hi"}]},
        "created_by": "t",
    }
    settings = SchedulerSettings(nats_url=nats_url, database_url=database_url)
    async with running(scheduler_app(settings)):
        report = (await client.post("/api/v1/jobs/validate", json=body)).json()
    # No executor runs in this test: the route is known, its executor is not live.
    assert (report["executor_kind"], report["image"]) == ("docker", IMAGE)
    assert [e["code"] for e in report["errors"]] == ["route.no_executor"]


async def test_a_runs_view_shows_the_image_its_attempt_started_in(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    body = {
        "job_type": "diagram_export",
        "spec": {"text": "export"},
        "code": {"files": [{"path": "main.py", "content": "print(1)"}]},
        "created_by": "t",
    }
    run_id = UUID((await client.post("/api/v1/jobs/run", json=body)).json()["run_id"])
    started = RunStarted(
        tenant_id="acme",
        run_id=run_id,
        attempt=1,
        sequence=3,
        executor_kind="docker",
        executor_id="docker@host",
        sandboxed=True,
        image=IMAGE,
    )
    await event_tap.publish(started.subject, started.model_dump_json().encode())

    async def view() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
        return data if data["status"] == "running" else None

    data = await eventually(view, what="the run running")
    assert data["image"] == IMAGE and data["sandboxed"] is True
    listed = (await client.get("/api/v1/runs", params={"job_type": "diagram_export"})).json()
    assert [r["image"] for r in listed["items"] if r["run_id"] == str(run_id)] == [IMAGE]
