"""What the Runboard reads besides the runs list: counts per status, the tenant's live feed of
run changes, a run's job, its artifacts as one ZIP, and the UI's own files."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from controlroom_contracts.api import JobRequest
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted, RunStarted
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually, until
from controlroom_gateway import ui
from controlroom_gateway.read_model import history_store, projection
from controlroom_gateway.runs import run_feed
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

from .live_server import following
from .test_api import PROBLEM, job
from .test_live_streams import SLOW_POLL, complete, live_gateway, submit

FEED = "/api/v1/runs/stream"


async def _project(gateway: FastAPI, *events: Any) -> None:
    runtime: ServiceRuntime = gateway.state.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await projection.project(uow, list(events))


def _done(run_id: str, tenant: str = "acme") -> RunCompleted:
    return RunCompleted(
        tenant_id=tenant, run_id=UUID(run_id), attempt=1, summary="ok", finished_at=utc_now()
    )


async def test_counts_name_every_status_and_follow_the_filters_and_the_tenant(
    gateway: FastAPI, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    ids = [(await client.post("/api/v1/jobs/run", json=job())).json()["run_id"] for _ in range(3)]
    await client.post("/api/v1/jobs/run", json=job(job_type="diagram_export"))
    other = {"Authorization": f"Bearer {token(tenant='globex')}"}
    assert (await client.post("/api/v1/jobs/run", json=job(), headers=other)).status_code == 202
    await _project(gateway, _done(ids[0]))

    counts = await client.get("/api/v1/runs/counts")
    assert counts.status_code == 200, counts.text
    assert counts.json() == {
        "counts": {
            "queued": 3,
            "dispatched": 0,
            "running": 0,
            "completed": 1,
            "failed": 0,
            "cancelled": 0,
        },
        "total": 4,
    }
    by_type = (await client.get("/api/v1/runs/counts", params={"job_type": "spark_etl"})).json()
    assert by_type["counts"]["queued"] == 2 and by_type["total"] == 3
    theirs = (await client.get("/api/v1/runs/counts", headers=other)).json()
    assert theirs["total"] == 1 and theirs["counts"]["queued"] == 1


async def test_counts_refuse_bad_filters_and_missing_tokens(client: httpx.AsyncClient) -> None:
    bad = await client.get("/api/v1/runs/counts", params={"lane": "A B"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    unsigned = await client.get("/api/v1/runs/counts", headers={"Authorization": ""})
    assert unsigned.status_code == 401 and unsigned.headers["content-type"] == PROBLEM


async def test_the_feed_sends_ready_then_each_change_as_the_runs_current_view(
    settings: GatewaySettings, token: Callable[..., str], event_tap: EventTap
) -> None:
    async with (
        live_gateway(settings.model_copy(update=SLOW_POLL), token()) as api,
        live_gateway(settings.model_copy(update=SLOW_POLL), token(tenant="globex")) as globex,
    ):
        run_id = await submit(api)
        theirs = await submit(globex)
        async with following(api, FEED) as feed:
            assert feed.status_code == 200
            await until(lambda: feed.types == ["ready"], what="ready")
            started = RunStarted(
                tenant_id="acme",
                run_id=UUID(run_id),
                attempt=1,
                executor_kind="docker",
                executor_id="e1",
                sandboxed=True,
            )
            await event_tap.publish(started.subject, started.model_dump_json().encode())
            await complete(event_tap, theirs, tenant="globex")
            await until(lambda: len(feed.types) == 2, what="the start in the feed")
            await complete(event_tap, run_id)
            await until(lambda: len(feed.types) == 3, what="the end in the feed")
            assert feed.types == ["ready", "run", "run"]
            views = [json.loads(data) for data in feed.data[1:]]
            # Woken by the commit, not the poll (an hour here); globex's run never shows.
            assert [(v["run_id"], v["status"]) for v in views] == [
                (run_id, "running"),
                (run_id, "completed"),
            ]
            ready_at, started_at, ended_at = (position for position, _ in feed.events)
            assert ready_at < started_at < ended_at

        # Resumed: from the ready position, both changes again (as the run's view now);
        # from the last one, only ready.
        async with following(api, FEED, headers={"Last-Event-ID": str(ready_at)}) as resumed:
            await until(lambda: len(resumed.types) == 2, what="the replay")
            assert resumed.events == [(ready_at, "ready"), (ended_at, "run")]
        async with following(api, FEED, headers={"Last-Event-ID": str(ended_at)}) as caught_up:
            await until(lambda: caught_up.types == ["ready"], what="ready")
            assert caught_up.events[0][0] == ended_at
        # A position this database never reached (it was restored): from the latest change.
        beyond = {"Last-Event-ID": str(ended_at + 1_000_000)}
        async with following(api, FEED, headers=beyond) as restored:
            await until(lambda: restored.types == ["ready"], what="ready")
            assert restored.events[0][0] == ended_at


async def test_the_feed_refuses_a_position_it_never_sent_and_a_missing_token(
    client: httpx.AsyncClient,
) -> None:
    bad = await client.get(FEED, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert "last-event-id" in bad.json()["errors"][0]["field"]
    unsigned = await client.get(FEED, headers={"Authorization": "Bearer nope"})
    assert unsigned.status_code == 401 and unsigned.headers["content-type"] == PROBLEM


async def test_a_runs_job_reads_back_without_its_callbacks_and_only_for_its_tenant(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    body = job(name="nightly-copy", spec={"text": "copy", "inputs": {"source": "Raw.A"}})
    run_id = (await client.post("/api/v1/jobs/run", json=body)).json()["run_id"]

    async def kept() -> dict[str, Any] | None:
        response = await client.get(f"/api/v1/runs/{run_id}/job")
        return response.json() if response.status_code == 200 else None

    view = await eventually(kept, what="the job to be kept by the projection")
    assert view["name"] == "nightly-copy" and view["job_type"] == "spark_etl"
    assert view["code"]["files"] == body["code"]["files"]
    assert view["spec"]["inputs"] == {"source": "Raw.A"}
    assert view["lineage"] == {"sources": ["raw.a"], "targets": []}
    assert "callbacks" not in view

    other = {"Authorization": f"Bearer {token(tenant='globex')}"}
    theirs = await client.get(f"/api/v1/runs/{run_id}/job", headers=other)
    assert theirs.status_code == 404 and theirs.headers["content-type"] == PROBLEM
    unknown = await client.get("/api/v1/runs/00000000-0000-4000-8000-000000000000/job")
    assert unknown.status_code == 404


async def test_jobs_are_kept_however_they_were_submitted(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    """With an Idempotency-Key (another statement), and straight to NATS (the projection)."""
    keyed = await client.post("/api/v1/jobs/run", json=job(), headers={"Idempotency-Key": "k1"})
    direct = JobSubmitted(
        tenant_id="acme", run_id=uuid4(), job=JobRequest.model_validate(job(name="direct"))
    )
    await event_tap.publish(direct.subject, direct.model_dump_json().encode())

    async def kept(run_id: str) -> dict[str, Any] | None:
        response = await client.get(f"/api/v1/runs/{run_id}/job")
        return response.json() if response.status_code == 200 else None

    assert (await kept(keyed.json()["run_id"])) is not None
    assert (await eventually(lambda: kept(str(direct.run_id))))["name"] == "direct"


async def test_a_runs_artifacts_come_as_one_zip_under_their_paths(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    run_id = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    files = {"out/result.csv": b"id,value\n" + b"1,2\n" * 5_000, "report.md": b"# done\n"}
    for path, data in files.items():
        uploaded = await client.post(
            "/api/v1/artifacts",
            data={"run_id": run_id, "path": path},
            files={"file": ("x", data, "text/plain")},
        )
        assert uploaded.status_code == 201, uploaded.text

    response = await client.get(f"/api/v1/runs/{run_id}/artifacts.zip")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == files

    # A second artifact under a path (a retried attempt stores its own): the latest only.
    again = await client.post(
        "/api/v1/artifacts",
        data={"run_id": run_id, "path": "report.md"},
        files={"file": ("x", b"# done again\n", "text/plain")},
    )
    assert again.status_code == 201, again.text
    response = await client.get(f"/api/v1/runs/{run_id}/artifacts.zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["out/result.csv", "report.md"]
        assert archive.read("report.md") == b"# done again\n"

    other = {"Authorization": f"Bearer {token(tenant='globex')}"}
    theirs = await client.get(f"/api/v1/runs/{run_id}/artifacts.zip", headers=other)
    assert theirs.status_code == 404 and theirs.headers["content-type"] == PROBLEM
    empty_run = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    empty = await client.get(f"/api/v1/runs/{empty_run}/artifacts.zip")
    with zipfile.ZipFile(io.BytesIO(empty.content)) as archive:
        assert archive.namelist() == []


async def test_the_ui_is_served_with_a_policy_that_allows_only_its_own_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/ui/", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src" not in policy
    assert (await client.get("/ui", headers={"Authorization": ""})).status_code == 307


def test_the_ui_loads_nothing_from_another_origin() -> None:
    """It works offline: no file refers to a script, style or font elsewhere."""
    files = [p for p in Path(ui.STATIC).rglob("*") if p.suffix in {".html", ".js", ".css"}]
    assert files, "the UI has no files"
    for path in files:
        text = path.read_text()
        for needle in ('src="http', "src='http", 'from "http', "url(http", "@import url(http"):
            assert needle not in text, f"{path.name} loads {needle}..."


def _history_row(tenant: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "run_id": uuid4(),
        "event_type": "completed",
        "occurred_at": utc_now(),
        "data": "{}",
    }


async def test_a_tenants_history_commits_in_id_order_however_many_write_it(
    gateway: FastAPI,
) -> None:
    """Readers go by id: an append waits for an earlier one of its tenant to commit, or a
    reader between the two commits would pass the earlier id for good."""
    runtime: ServiceRuntime = gateway.state.runtime

    async def waiting_appends() -> int:
        async with runtime.sessions() as session:
            query = sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return int((await session.execute(query)).scalar_one())

    async def append(tenant: str) -> None:
        async with runtime.sessions() as session, session.begin():
            await history_store.add_run_events(session, [_history_row(tenant)])

    async with runtime.sessions() as first, first.begin():
        await history_store.add_run_events(first, [_history_row("acme")])
        await append("globex")  # another tenant's history does not wait
        second = asyncio.create_task(append("acme"))
        await eventually(waiting_appends, what="acme's second append to wait for the first")
        assert not second.done()
    await asyncio.wait_for(second, timeout=30)
    assert await waiting_appends() == 0


async def test_the_feeds_query_reads_its_partial_index(gateway: FastAPI) -> None:
    runtime: ServiceRuntime = gateway.state.runtime
    async with runtime.sessions() as session, session.begin():
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        query = run_feed.changes_query("acme", 0, 10)
        compiled = query.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join((await session.execute(sa.text(f"EXPLAIN {compiled}"))).scalars())
    assert "ix_run_events_tenant_changes" in plan, plan
