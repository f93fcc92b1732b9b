"""Retention in the gateway: idempotency keys expire, ended runs expire and are then purged
with their history, artifacts and stored objects. Rows are aged by writing their timestamps
into the past, and the passes are called directly: nothing here waits for a timer. (The
service's own passes run once as it starts, then every ten minutes: the tests check what is
left, not who deleted it.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from controlroom_contracts.api import RunStatus
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.read_model import retention, store
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.retention import RetentionRule, prune_once
from controlroom_runtime.service import ServiceRuntime

PROBLEM = "application/problem+json"
JOB = {
    "job_type": "diagram_export",
    "spec": {"text": "x"},
    "code": {"files": [{"path": "a.py", "content": ""}]},
    "created_by": "t",
}


def _runtime(gateway: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = gateway.state.runtime
    return runtime


def _rule(gateway: FastAPI, name: str) -> RetentionRule:
    return next(r for r in _runtime(gateway).retention_rules if r.name == name)


async def _execute(gateway: FastAPI, statement: sa.Executable) -> None:
    async with _runtime(gateway).sessions.begin() as session:
        await session.execute(statement)


async def _count(gateway: FastAPI, table: sa.Table, run_id: str) -> int:
    async with _runtime(gateway).sessions() as session:
        found = await session.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.c.run_id == UUID(run_id))
        )
    return int(found or 0)


async def _submit(client: httpx.AsyncClient, **job: Any) -> str:
    response = await client.post("/api/v1/jobs/run", json=JOB | job)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def _end(gateway: FastAPI, run_id: str, *, days_ago: float) -> None:
    await _execute(
        gateway,
        sa.update(store.runs)
        .where(store.runs.c.run_id == UUID(run_id))
        .values(
            status=RunStatus.completed.value,
            completed_at=sa.func.now() - timedelta(days=days_ago),
        ),
    )


async def _upload(client: httpx.AsyncClient, run_id: str, path: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/artifacts",
        data={"run_id": run_id, "path": path},
        files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert response.status_code == 201, response.text
    artifact: dict[str, Any] = response.json()
    # Its ArtifactStored is projected into the run's history: wait for it, so that nothing
    # arrives for the run after it is purged.
    await eventually(
        lambda: _history_has_artifact(client, run_id), what=f"artifact history of {run_id}"
    )
    return artifact


async def _history_has_artifact(client: httpx.AsyncClient, run_id: str) -> bool:
    events = (await client.get(f"/api/v1/runs/{run_id}/events")).json()["items"]
    return any(e["event_type"] == "artifact" for e in events)


def _stored_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_an_expired_idempotency_key_makes_a_new_run_and_its_row_is_pruned(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    app = create_app(settings.model_copy(update={"idempotency_key_ttl_hours": 1.0}))
    async with running(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {token()}"},
        ) as client:
            first = await client.post(
                "/api/v1/jobs/run", json=JOB, headers={"Idempotency-Key": "k"}
            )
            assert first.status_code == 202
            again = await client.post(
                "/api/v1/jobs/run", json=JOB, headers={"Idempotency-Key": "k"}
            )
            assert again.status_code == 200 and again.json() == first.json()
            for key in ("old", "young"):
                response = await client.post(
                    "/api/v1/jobs/run", json=JOB, headers={"Idempotency-Key": key}
                )
                assert response.status_code == 202
            keys = store.idempotency_keys
            # Past the one-hour lifetime: "k" and "old"; "young" half-way through it.
            for key, age in (("k", 2.0), ("old", 2.0), ("young", 0.5)):
                await _execute(
                    app,
                    sa.update(keys)
                    .where(keys.c.key == key)
                    .values(created_at=sa.func.now() - timedelta(hours=age)),
                )

            # Not pruned yet, and already no replay: the same key and body make a new run.
            later = await client.post(
                "/api/v1/jobs/run", json=JOB, headers={"Idempotency-Key": "k"}
            )
            assert later.status_code == 202, later.text
            assert later.json()["run_id"] != first.json()["run_id"]
            # ... which the key names from now on.
            replay = await client.post(
                "/api/v1/jobs/run", json=JOB, headers={"Idempotency-Key": "k"}
            )
            assert replay.status_code == 200 and replay.json() == later.json()

            await prune_once(_runtime(app).sessions, _rule(app, "idempotency_keys"))
            async with _runtime(app).sessions() as session:
                left = set((await session.execute(sa.select(keys.c.key))).scalars())
            assert left == {"k", "young"}


async def test_a_run_ended_past_the_horizon_expires_then_is_purged_with_its_objects(
    gateway: FastAPI,
    client: httpx.AsyncClient,
    settings: GatewaySettings,
) -> None:
    session_id = (await client.post("/api/v1/sessions", json={"name": "s"})).json()["session_id"]
    old = await _submit(client, session_id=session_id)
    recent = await _submit(client, session_id=session_id)
    unfinished = await _submit(client, session_id=session_id)
    old_artifact = await _upload(client, old, "output/old.csv")
    await _upload(client, recent, "output/recent.csv")
    await _end(gateway, old, days_ago=settings.run_retention_days + 1)
    await _end(gateway, recent, days_ago=settings.run_retention_days - 1)
    # Created long ago and never ended: a run that has not ended never expires.
    await _execute(
        gateway,
        sa.update(store.runs)
        .where(store.runs.c.run_id == UUID(unfinished))
        .values(created_at=sa.func.now() - timedelta(days=10 * settings.run_retention_days)),
    )
    horizon = timedelta(days=settings.run_retention_days)
    runtime = _runtime(gateway)

    await retention.expire_runs(runtime.sessions, horizon)
    assert await retention.expire_runs(runtime.sessions, horizon) == 0  # each run expires once

    # Expired: gone from every read, as a run that never existed is.
    for url in (
        f"/api/v1/runs/{old}",
        f"/api/v1/runs/{old}/events",
        f"/api/v1/runs/{old}/events/stream",
        f"/api/v1/runs/{old}/job",
        f"/api/v1/runs/{old}/artifacts.zip",
        old_artifact["url"],
    ):
        gone = await client.get(url)
        assert gone.status_code == 404, url
        assert gone.headers["content-type"] == PROBLEM
    assert (await client.post(f"/api/v1/runs/{old}/cancel")).status_code == 404
    listed = {r["run_id"] for r in (await client.get("/api/v1/runs")).json()["items"]}
    assert listed == {recent, unfinished}
    counts = (await client.get(f"/api/v1/sessions/{session_id}")).json()["counts"]
    assert (counts["completed"], counts["queued"]) == (1, 1)
    for run_id in (recent, unfinished):
        assert (await client.get(f"/api/v1/runs/{run_id}")).status_code == 200

    # Purged only once the grace has passed, with its history, artifacts and objects.
    root = Path(settings.object_store.directory)
    purge = _rule(gateway, "expired_runs")
    await prune_once(runtime.sessions, purge)
    assert await _count(gateway, store.runs, old) == 1
    assert await _count(gateway, store.artifacts, old) == 1
    assert await _count(gateway, store.run_jobs, old) == 1
    await _execute(
        gateway,
        sa.update(store.runs)
        .where(store.runs.c.run_id == UUID(old))
        .values(expired_at=sa.func.now() - timedelta(days=settings.run_purge_grace_days, hours=1)),
    )
    stored_before = _stored_files(root)
    assert any(name.startswith(f"acme/{old}/") for name in stored_before)
    await prune_once(runtime.sessions, purge)
    assert await _count(gateway, store.runs, old) == 0
    assert await _count(gateway, store.run_events, old) == 0
    assert await _count(gateway, store.run_jobs, old) == 0
    assert await _count(gateway, store.artifacts, old) == 0
    assert _stored_files(root) == {n for n in stored_before if not n.startswith(f"acme/{old}/")}
    assert await _count(gateway, store.artifacts, recent) == 1
    assert await _count(gateway, store.run_events, recent) >= 1
    assert (await client.get(f"/api/v1/runs/{recent}")).json()["artifacts"] != []
