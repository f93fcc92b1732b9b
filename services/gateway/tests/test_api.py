"""The gateway's REST API against a real nats-server and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted, RunStarted
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_gateway.jobs.submissions import GATEWAY_ORIGIN, ORIGIN_HEADER, submission_message
from controlroom_gateway.read_model import submitted_runs

PROBLEM = "application/problem+json"


def job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "spark_etl",
        "spec": {"text": "copy", "inputs": {"source": "raw.a", "target": "gold.a"}},
        "code": {"files": [{"path": "jobs/etl.py", "content": "print('hi')"}]},
        "created_by": "continue-ide-plugin",
        "callbacks": {"on_complete": "http://127.0.0.1:9/done"},
    }
    body.update(overrides)
    return body


async def test_submit_queues_the_run_and_publishes_job_submitted(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    response = await client.post("/api/v1/jobs/run", json=job())
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    run_id = body["run_id"]
    seen = await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)
    assert seen.data["tenant_id"] == "acme"
    assert seen.data["submitted_by"] == "tester"
    assert seen.headers["Nats-Msg-Id"] == seen.data["event_id"]
    assert "traceparent" in seen.headers
    view = (await client.get(f"/api/v1/runs/{run_id}")).json()
    assert view["status"] == "queued" and view["job_type"] == "spark_etl"


async def test_a_burst_of_submissions_is_committed_and_published_run_by_run(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    """Submissions arriving together share transactions; each still gets its own run, row and
    event, with the trace of its own request."""
    responses = await asyncio.gather(
        *(client.post("/api/v1/jobs/run", json=job(created_by=f"burst-{n}")) for n in range(40))
    )
    assert {r.status_code for r in responses} == {202}
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 40
    listed = (await client.get("/api/v1/runs", params={"limit": 200})).json()["items"]
    assert run_ids <= {r["run_id"] for r in listed}

    async def all_published() -> set[str] | None:
        seen = {s.data["run_id"] for s in event_tap.matching(subjects.JOB_SUBMITTED)}
        return seen if run_ids <= seen else None

    await eventually(all_published, what="a JobSubmitted for every run of the burst")
    traces = {
        s.headers["traceparent"].split("-")[1]
        for s in event_tap.matching(subjects.JOB_SUBMITTED)
        if s.data["run_id"] in run_ids
    }
    assert len(traces) == 40


async def test_the_read_model_keeps_the_schedulers_latest_decision(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    run_id = UUID((await client.post("/api/v1/jobs/run", json=job())).json()["run_id"])
    done = RunCompleted(
        tenant_id="acme",
        run_id=run_id,
        attempt=1,
        sequence=4,
        summary="ok",
        finished_at=utc_now(),
    )
    started = RunStarted(
        tenant_id="acme",
        run_id=run_id,
        attempt=1,
        sequence=3,
        executor_kind="docker",
        executor_id="e1",
        sandboxed=False,
    )
    # The later decision first, the earlier one late: the run must stay completed and still
    # learn started_at.
    await event_tap.publish(done.subject, done.model_dump_json().encode())
    await event_tap.publish(started.subject, started.model_dump_json().encode())

    async def view() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
        return data if data["started_at"] and data["status"] == "completed" else None

    data = await eventually(view)
    assert data["exit_code"] == 0 and data["sandboxed"] is False and data["attempt"] == 1


async def test_a_submission_written_but_never_published_is_published_by_the_relay(
    gateway: FastAPI, client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    """A crash between the commit and the publish: the run is visible at once, and the relay
    publishes its JobSubmitted from the outbox row written in the same statement."""
    runtime = gateway.state.runtime
    event = JobSubmitted(
        tenant_id="acme",
        run_id=uuid4(),
        job=JobRequest(
            job_type="spark_etl",
            spec=JobSpec(text="copy", inputs={"source": "raw.a", "target": "gold.a"}),
            code=CodeBundle(files=[CodeFile(path="c.py", content="")]),
            created_by="ci",
        ),
    )
    async with runtime.autocommit.connect() as conn:
        await submitted_runs.record_submissions(conn, [event], [submission_message(event)])

    view = (await client.get(f"/api/v1/runs/{event.run_id}")).json()
    assert view["status"] == "queued" and view["job_type"] == "spark_etl"
    assert await runtime.outbox.relay_once(older_than=timedelta(0)) == 1
    seen = await event_tap.wait_for(
        subjects.JOB_SUBMITTED, lambda d: d["run_id"] == str(event.run_id)
    )
    assert seen.headers[ORIGIN_HEADER] == GATEWAY_ORIGIN
    assert seen.data["job"]["spec"]["inputs"] == {"source": "raw.a", "target": "gold.a"}


async def test_internal_job_submitted_becomes_a_visible_run(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    event = JobSubmitted(
        tenant_id="acme",
        run_id=uuid4(),
        job=JobRequest(
            job_type="kb_catalog",
            spec=JobSpec(text="catalog"),
            code=CodeBundle(files=[CodeFile(path="c.py", content="")]),
            created_by="n8n",
        ),
    )
    await event_tap.publish(event.subject, event.model_dump_json().encode())

    async def visible() -> bool:
        return (await client.get(f"/api/v1/runs/{event.run_id}")).status_code == 200

    await eventually(visible)


async def test_missing_or_bad_token_is_401_problem(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    no_token = await client.get(f"/api/v1/runs/{uuid4()}", headers={"Authorization": ""})
    assert no_token.status_code == 401
    assert no_token.headers["content-type"] == PROBLEM
    assert no_token.headers["www-authenticate"] == "Bearer"
    forged = token() + "x"
    bad = await client.get(f"/api/v1/runs/{uuid4()}", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401 and bad.json()["title"] == "Unauthorized"
    expired = await client.post(
        "/api/v1/jobs/run", json=job(), headers={"Authorization": f"Bearer {token(ttl=-60)}"}
    )
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_viewer_cannot_submit(client: httpx.AsyncClient, token: Callable[..., str]) -> None:
    response = await client.post(
        "/api/v1/jobs/run", json=job(), headers={"Authorization": f"Bearer {token(role='viewer')}"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM


async def test_malformed_body_is_422_naming_the_field_and_nothing_is_queued(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    missing = await client.post("/api/v1/jobs/run", json=job(spec={"inputs": {}}))
    assert missing.status_code == 422
    assert missing.headers["content-type"] == PROBLEM
    assert [e["field"] for e in missing.json()["errors"]] == ["body.spec.text"]
    traversal = await client.post(
        "/api/v1/jobs/run", json=job(code={"files": [{"path": "../x.py", "content": ""}]})
    )
    assert traversal.status_code == 422
    assert traversal.json()["errors"][0]["field"] == "body.code.files.0.path"
    not_json = await client.post(
        "/api/v1/jobs/run", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    unknown = await client.post("/api/v1/jobs/run", json=job(job_type="mine_bitcoin"))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.job_type"
    too_big_file = await client.post(
        "/api/v1/jobs/run",
        json=job(code={"files": [{"path": "a.py", "content": "#" * (17 * 1024)}]}),
    )
    assert too_big_file.status_code == 422
    # A good submission afterwards is the first and only JobSubmitted seen.
    good = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == good)
    assert [s.data["run_id"] for s in event_tap.matching(subjects.JOB_SUBMITTED)] == [good]


async def test_oversized_body_is_413_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs/run",
        json=job(spec={"text": "x" * 70_000, "inputs": {}}),
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_another_tenants_run_is_404_and_unknown_run_is_404(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    run_id = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    other = await client.get(
        f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token(tenant='globex')}"}
    )
    assert other.status_code == 404
    assert other.headers["content-type"] == PROBLEM
    unknown = await client.get(f"/api/v1/runs/{uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["status"] == 404
    malformed_id = await client.get("/api/v1/runs/not-a-uuid")
    assert malformed_id.status_code == 422


async def test_lineage_without_the_lineage_service_is_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/lineage/graph", params={"entity": "a.b"})
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "nats": "ok",
        "postgres": "ok",
        "migrations": "ok",
        "outbox": "ok",
    }
    docs = await client.get("/openapi.json")
    assert "/api/v1/jobs/run" in docs.json()["paths"]


async def test_list_runs_filters_and_pages_without_gaps_or_repeats(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    created = []
    for n in range(7):
        body = job(job_type="spark_etl" if n % 2 else "diagram_export", created_by=f"user{n % 3}")
        created.append((await client.post("/api/v1/jobs/run", json=body)).json()["run_id"])
    await client.post(
        "/api/v1/jobs/run", json=job(), headers={"Authorization": f"Bearer {token(tenant='other')}"}
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/runs", params=params)).json()
        seen += [item["run_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))  # newest first, every run once, no other tenant
    etl = (await client.get("/api/v1/runs", params={"job_type": "spark_etl"})).json()["items"]
    assert {r["job_type"] for r in etl} == {"spark_etl"} and len(etl) == 3
    mine = (
        await client.get("/api/v1/runs", params={"created_by": "user0", "status": "queued"})
    ).json()
    assert len(mine["items"]) == 3
    future = (await client.get("/api/v1/runs", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert future == {"items": [], "next_cursor": None}
    bad = await client.get("/api/v1/runs", params={"cursor": "!!!"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    bad_status = await client.get("/api/v1/runs", params={"status": "exploded"})
    assert bad_status.status_code == 422


async def test_idempotency_key_replays_the_same_body_and_refuses_a_different_one(
    client: httpx.AsyncClient, token: Callable[..., str], event_tap: EventTap
) -> None:
    headers = {"Idempotency-Key": "build-42"}
    first = await client.post("/api/v1/jobs/run", json=job(), headers=headers)
    assert first.status_code == 202
    again = await client.post("/api/v1/jobs/run", json=job(), headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    different = await client.post("/api/v1/jobs/run", json=job(created_by="else"), headers=headers)
    assert different.status_code == 409
    assert different.headers["content-type"] == PROBLEM
    assert different.json()["run_id"] == first.json()["run_id"]
    # Keys belong to a tenant: another tenant's identical key is a new run.
    other = await client.post(
        "/api/v1/jobs/run",
        json=job(),
        headers=headers | {"Authorization": f"Bearer {token(tenant='globex')}"},
    )
    assert other.status_code == 202 and other.json()["run_id"] != first.json()["run_id"]
    concurrent = await asyncio.gather(
        *(
            client.post("/api/v1/jobs/run", json=job(), headers={"Idempotency-Key": "race"})
            for _ in range(5)
        )
    )
    assert len({r.json()["run_id"] for r in concurrent}) == 1
    assert sorted(r.status_code for r in concurrent) == [200, 200, 200, 200, 202]
    run_id = first.json()["run_id"]
    await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)
    assert len(event_tap.matching(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)) == 1


async def test_pushed_events_and_lifecycle_form_the_history_and_the_stream(
    client: httpx.AsyncClient, event_tap: EventTap, token: Callable[..., str]
) -> None:
    run_id = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    url = f"/api/v1/runs/{run_id}/events"
    pushes = [
        {"event_type": "progress", "data": {"percent": 50, "message": "half"}},
        {"event_type": "log", "data": {"stream": "stderr", "lines": ["warn: x"]}},
        {"event_type": "artifact", "data": {"path": "output/a.csv", "size_bytes": 3}},
    ]
    for body in pushes:
        assert (await client.post(url, json=body)).status_code == 202
    done = RunCompleted(
        tenant_id="acme", run_id=UUID(run_id), attempt=1, summary="ok", finished_at=utc_now()
    )
    await event_tap.wait_for(subjects.ARTIFACT_REPORTED, lambda d: d["run_id"] == run_id)
    await event_tap.publish(done.subject, done.model_dump_json().encode())

    async def history() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await client.get(url)).json()["items"]
        return items if items and items[-1]["event_type"] == "completed" else None

    items = await eventually(history)
    assert [i["event_type"] for i in items] == ["progress", "log", "artifact", "completed"]
    assert items[0]["data"]["percent"] == 50 and items[2]["data"]["path"] == "output/a.csv"
    paged = (await client.get(url, params={"limit": 2})).json()
    rest = (await client.get(url, params={"cursor": paged["next_cursor"]})).json()
    assert [i["id"] for i in paged["items"] + rest["items"]] == [i["id"] for i in items]

    # The stream replays everything and closes at the end of the run ...
    stream = await client.get(f"{url}/stream")
    assert stream.headers["content-type"].startswith("text/event-stream")
    ids = [int(line[4:]) for line in stream.text.splitlines() if line.startswith("id: ")]
    assert ids == [i["id"] for i in items]
    # ... and resumes after Last-Event-ID.
    resumed = await client.get(f"{url}/stream", headers={"Last-Event-ID": str(items[1]["id"])})
    ids = [int(line[4:]) for line in resumed.text.splitlines() if line.startswith("id: ")]
    assert ids == [i["id"] for i in items[2:]]

    viewer = {"Authorization": f"Bearer {token(role='viewer')}"}
    assert (await client.post(url, json=pushes[0], headers=viewer)).status_code == 403
    other = {"Authorization": f"Bearer {token(tenant='globex')}"}
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.get(f"{url}/stream", headers=other)).status_code == 404
    assert (await client.post(url, json=pushes[0], headers=other)).status_code == 404
    bad = await client.post(url, json={"event_type": "progress", "data": {"percent": 101}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("percent")
    unknown_type = await client.post(url, json={"event_type": "explode", "data": {}})
    assert unknown_type.status_code == 422


async def test_executors_that_reported_in_are_listed(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    from controlroom_contracts.executors import ExecutorHeartbeat

    beat = ExecutorHeartbeat(
        executor_id="docker@host-1",
        kind="docker",
        capacity=4,
        running=1,
        ready=True,
        started_at=utc_now(),
    )
    await event_tap.client.publish(beat.subject, b"{not json")  # ignored, nothing breaks
    await event_tap.client.publish(beat.subject, beat.model_dump_json().encode())

    async def listed() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = (await client.get("/api/v1/executors")).json()
        return rows or None

    rows = await eventually(listed)
    assert rows == [
        {
            "id": "docker@host-1",
            "kind": "docker",
            "capacity": 4,
            "running": 1,
            "ready": True,
            "last_heartbeat": rows[0]["last_heartbeat"],
            "stale": False,
        }
    ]
    assert (await client.get("/api/v1/executors", headers={"Authorization": ""})).status_code == 401


async def test_nul_characters_are_refused_with_422_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    lineage = await client.get("/api/v1/lineage/graph", params={"entity": "a\x00b"})
    assert lineage.status_code == 422
    listing = await client.get("/api/v1/runs", params={"created_by": "x\x00"})
    assert listing.status_code == 422
    body = job(created_by="me\x00", spec={"text": "x", "inputs": {"k\x00": "v"}})
    submitted = await client.post("/api/v1/jobs/run", json=body)
    assert submitted.status_code == 422
    fields = {e["field"] for e in submitted.json()["errors"]}
    assert {"body.created_by", "body.spec.inputs"} <= fields


@pytest.mark.parametrize(
    ("what", "raw"),
    [
        ("a lone surrogate in a key", b'{"\\ud92e": 1}'),
        ("a lone surrogate in a value", b'{"job_type": "\\udc14x"}'),
        ("NaN", b'{"job_type": NaN}'),
        ("Infinity", b'{"job_type": -Infinity}'),
        ("a number too large for a float", b'{"spec": {"text": 1e400}}'),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/jobs/run", "/api/v1/jobs/validate"])
async def test_json_that_is_not_interoperable_is_422_not_a_server_error(
    client: httpx.AsyncClient, path: str, what: str, raw: bytes
) -> None:
    """RFC 8259 leaves lone surrogates and non-finite numbers to the parser; Python's would
    accept them and the answer (UTF-8, finite JSON) could then not be written."""
    response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, (what, response.text)
    assert response.headers["content-type"] == PROBLEM
    error = response.json()["errors"][0]
    assert error["type"] == "json_invalid" and error["message"].startswith("JSON decode error: ")


async def test_validate_reports_a_field_name_with_nul_instead_of_failing(
    client: httpx.AsyncClient,
) -> None:
    """NUL is refused in stored input, but a report may name the offending field as sent."""
    response = await client.post("/api/v1/jobs/validate", json={**job(), "x\x00y": 1})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is False
    assert [e["field"] for e in report["errors"]] == ["body.x\x00y"]
