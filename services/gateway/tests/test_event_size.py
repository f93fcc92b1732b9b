"""A request whose event the broker could never take is refused at the edge, naming the part;
nothing is written, and the submissions after it go out as usual."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from controlroom_contracts import subjects
from controlroom_devstack.tap import EventTap
from controlroom_gateway.read_model.store import runs
from controlroom_gateway.settings import GatewaySettings

from .test_api import PROBLEM, job

MIB = 1 << 20


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    """The production body limit: as large as the broker's max_payload (1 MiB)."""
    return settings.model_copy(
        update={
            "max_body_bytes": MIB,
            "max_code_file_bytes": 256 * 1024,
            "max_code_total_bytes": 768 * 1024,
        }
    )


async def _run_count(gateway: FastAPI) -> int:
    async with gateway.state.runtime.sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(runs)) or 0)


async def test_a_body_under_the_limit_whose_event_would_not_fit_is_refused_naming_the_part(
    client: httpx.AsyncClient, gateway: FastAPI, event_tap: EventTap
) -> None:
    # Most of a body just under 1 MiB in spec.inputs: it passes every other check.
    inputs = {"source": "raw.a", "target": "gold.a", "notes": "x" * (MIB - 4096)}
    body: dict[str, Any] = job(spec={"text": "copy", "inputs": inputs})
    response = await client.post("/api/v1/jobs/run", json=body)

    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["parts"][0]["field"] == "spec.inputs"
    assert "spec.inputs" in problem["detail"]
    assert problem["event_bytes"] > problem["limit_bytes"]
    assert await _run_count(gateway) == 0

    with_key = await client.post(
        "/api/v1/jobs/run", json=body, headers={"Idempotency-Key": "too-big-1"}
    )
    assert with_key.status_code == 413
    assert await _run_count(gateway) == 0

    accepted = await client.post("/api/v1/jobs/run", json=job())
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)


async def test_a_pushed_log_batch_the_broker_could_not_take_is_refused(
    client: httpx.AsyncClient,
) -> None:
    run_id = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    # A body 100 bytes under the limit: the event around its lines is a few hundred more.
    lines = ["a" * 15_000] * 69
    body: dict[str, Any] = {"event_type": "log", "data": {"stream": "stdout", "lines": lines}}
    lines.append("a" * (MIB - 100 - len(json.dumps(body, separators=(",", ":"))) - 3))
    content = json.dumps(body, separators=(",", ":")).encode()
    assert len(content) == MIB - 100
    response = await client.post(
        f"/api/v1/runs/{run_id}/events",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "controlroom.events.run.log" in response.json()["detail"]
