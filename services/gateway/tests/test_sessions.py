"""Sessions: create, read, page, aggregate their runs, cancel them, and keep tenants apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from controlroom_contracts import subjects
from controlroom_contracts.api import RunStatus
from controlroom_contracts.base import utc_now
from controlroom_devstack.tap import EventTap
from controlroom_gateway.read_model import store, submitted_runs

PROBLEM = "application/problem+json"
ZERO = {status.value: 0 for status in RunStatus}


def job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "spark_etl",
        "spec": {"text": "copy"},
        "code": {"files": [{"path": "jobs/etl.py", "content": "print('hi')"}]},
        "created_by": "ci",
    }
    return body | overrides


def as_(token: Callable[..., str], **claims: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**claims)}"}


async def new_session(client: httpx.AsyncClient, name: str = "nightly") -> str:
    response = await client.post("/api/v1/sessions", json={"name": name})
    assert response.status_code == 201, response.text
    session_id: str = response.json()["session_id"]
    return session_id


async def submit(client: httpx.AsyncClient, session_id: str | None, n: int = 1) -> list[str]:
    run_ids = []
    for _ in range(n):
        response = await client.post("/api/v1/jobs/run", json=job(session_id=session_id))
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])
    return run_ids


async def set_status(gateway: FastAPI, status: RunStatus, *run_ids: str) -> None:
    """Write run statuses into the read model: no scheduler runs in these tests."""
    async with gateway.state.runtime.sessions() as session, session.begin():
        await session.execute(
            sa.update(store.runs)
            .where(store.runs.c.run_id.in_([UUID(r) for r in run_ids]))
            .values(status=status.value)
        )


async def session_view(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_a_created_session_is_read_back_and_listed_newest_first_in_pages(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    body = {"name": "migration wave 1", "description": "orders and customers"}
    created = await client.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["name"] == "migration wave 1" and view["description"] == "orders and customers"
    assert view["status"] == "active" and view["counts"] == ZERO
    assert view["created_by"] == "tester" and view["created_at"]
    assert await session_view(client, view["session_id"]) == view

    later = [await new_session(client, f"wave {n}") for n in (2, 3)]
    theirs = await client.post(
        "/api/v1/sessions", json={"name": "theirs"}, headers=as_(token, tenant="globex")
    )
    assert theirs.status_code == 201
    first = (await client.get("/api/v1/sessions", params={"limit": 2})).json()
    assert [s["session_id"] for s in first["items"]] == list(reversed(later))
    assert first["next_cursor"]
    second = (
        await client.get("/api/v1/sessions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert second == {"items": [view], "next_cursor": None}  # and never the other tenant's
    bad = await client.get("/api/v1/sessions", params={"cursor": "!!!"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/sessions", params={"limit": 201})).status_code == 422


async def test_counts_and_status_are_derived_from_the_sessions_runs(
    gateway: FastAPI, client: httpx.AsyncClient
) -> None:
    session_id = await new_session(client)
    runs = await submit(client, session_id, 3)
    await submit(client, None)  # outside any session
    await submit(client, await new_session(client, "another"))
    # Another tenant's run carrying this session's id (a submission over NATS is not checked).
    async with gateway.state.runtime.sessions() as session, session.begin():
        await submitted_runs.insert_runs(
            session,
            [
                {
                    "run_id": uuid4(),
                    "tenant_id": "globex",
                    "job_type": "spark_etl",
                    "status": "failed",
                    "created_by": "ci",
                    "created_at": utc_now(),
                    "session_id": UUID(session_id),
                }
            ],
        )

    queued = await session_view(client, session_id)
    assert queued["status"] == "active" and queued["counts"] == ZERO | {"queued": 3}
    listed = (await client.get("/api/v1/runs", params={"session_id": session_id})).json()
    assert sorted(r["run_id"] for r in listed["items"]) == sorted(runs)

    await set_status(gateway, RunStatus.completed, runs[0], runs[1])
    await set_status(gateway, RunStatus.running, runs[2])
    running = await session_view(client, session_id)
    assert running["status"] == "active"
    assert running["counts"] == ZERO | {"completed": 2, "running": 1}

    await set_status(gateway, RunStatus.completed, runs[2])
    done = await session_view(client, session_id)
    assert done["status"] == "completed" and done["counts"] == ZERO | {"completed": 3}
    page = (await client.get("/api/v1/sessions")).json()["items"]
    assert next(s for s in page if s["session_id"] == session_id) == done

    await set_status(gateway, RunStatus.failed, runs[1])
    failed = await session_view(client, session_id)
    assert failed["status"] == "failed"
    assert failed["counts"] == ZERO | {"completed": 2, "failed": 1}

    await set_status(gateway, RunStatus.cancelled, runs[1])
    assert (await session_view(client, session_id))["status"] == "failed"


async def test_cancel_requests_cancellation_of_exactly_the_unfinished_runs(
    gateway: FastAPI, client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    session_id = await new_session(client)
    queued, running, completed, cancelled = await submit(client, session_id, 4)
    await set_status(gateway, RunStatus.running, running)
    await set_status(gateway, RunStatus.completed, completed)
    await set_status(gateway, RunStatus.cancelled, cancelled)
    await submit(client, None)  # outside any session: never cancelled
    other_session = await new_session(client, "other")
    (marker,) = await submit(client, other_session)

    response = await client.post(f"/api/v1/sessions/{session_id}/cancel")
    assert response.status_code == 202, response.text
    assert response.json() == {"session_id": session_id, "cancel_requested": 2}
    # Cancelled after it, the other session's run is seen last: everything before it has arrived.
    assert (await client.post(f"/api/v1/sessions/{other_session}/cancel")).status_code == 202
    await event_tap.wait_for(subjects.CANCEL_REQUESTED, lambda d: d["run_id"] == marker)
    seen = event_tap.matching(subjects.CANCEL_REQUESTED)
    assert sorted(s.data["run_id"] for s in seen) == sorted([queued, running, marker])
    assert {(s.data["tenant_id"], s.data["requested_by"]) for s in seen} == {("acme", "tester")}

    await set_status(gateway, RunStatus.cancelled, queued, running)
    again = await client.post(f"/api/v1/sessions/{session_id}/cancel")
    assert again.status_code == 202 and again.json()["cancel_requested"] == 0


async def test_malformed_session_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ({"description": "no name"}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "n" * 201}, "body.name"),
        ({"name": "ok", "description": "d" * 2001}, "body.description"),
        ({"name": "ok", "colour": "blue"}, "body.colour"),
        ({"name": "nul\u0000"}, "body.name"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/sessions", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == [field], body
    assert (await client.post("/api/v1/sessions", json={"name": "n" * 200})).status_code == 201
    assert (await client.get("/api/v1/sessions")).json()["items"][0]["name"] == "n" * 200
    malformed_id = await client.get("/api/v1/sessions/not-a-uuid")
    assert malformed_id.status_code == 422 and malformed_id.headers["content-type"] == PROBLEM


async def test_an_oversized_body_is_413_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/sessions", json={"name": "big", "description": "x" * 70_000}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/sessions")).json()["items"] == []


async def test_a_viewer_reads_sessions_but_cannot_create_or_cancel_them(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    session_id = await new_session(client)
    viewer = as_(token, role="viewer")
    for path, body in [
        ("/api/v1/sessions", {"name": "v"}),
        (f"/api/v1/sessions/{session_id}/cancel", None),
    ]:
        refused = await client.post(path, json=body, headers=viewer)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == PROBLEM
    assert (await client.get(f"/api/v1/sessions/{session_id}", headers=viewer)).status_code == 200
    listed = (await client.get("/api/v1/sessions", headers=viewer)).json()["items"]
    assert [s["session_id"] for s in listed] == [session_id]


async def test_another_tenants_or_an_unknown_session_is_404_and_queues_nothing(
    client: httpx.AsyncClient, token: Callable[..., str], event_tap: EventTap
) -> None:
    session_id = await new_session(client)
    globex = as_(token, tenant="globex")
    globex_admin = as_(token, tenant="globex", role="admin")
    for sid, headers in [(session_id, globex), (str(uuid4()), {})]:
        got = await client.get(f"/api/v1/sessions/{sid}", headers=headers)
        assert got.status_code == 404 and got.headers["content-type"] == PROBLEM
        cancel = await client.post(f"/api/v1/sessions/{sid}/cancel", headers=headers)
        assert cancel.status_code == 404 and cancel.headers["content-type"] == PROBLEM
        submitted = await client.post("/api/v1/jobs/run", json=job(session_id=sid), headers=headers)
        assert submitted.status_code == 404 and submitted.headers["content-type"] == PROBLEM
        keyed = await client.post(
            "/api/v1/jobs/run",
            json=job(session_id=sid),
            headers=headers | {"Idempotency-Key": f"k-{sid}"},
        )
        assert keyed.status_code == 404
    # A template runs through the same check.
    template = {"name": "borrowed", "job": job(session_id=session_id)}
    saved = await client.post("/api/v1/templates", json=template, headers=globex_admin)
    assert saved.status_code == 201, saved.text
    ran = await client.post("/api/v1/templates/borrowed/run", json={}, headers=globex_admin)
    assert ran.status_code == 404 and ran.headers["content-type"] == PROBLEM

    assert (await client.get("/api/v1/runs", headers=globex)).json()["items"] == []
    assert (await client.get("/api/v1/runs")).json()["items"] == []
    # The acme run submitted into its own session is the first and only JobSubmitted seen.
    (good,) = await submit(client, session_id)
    assert (await client.get(f"/api/v1/runs/{good}")).json()["session_id"] == session_id
    await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == good)
    assert [s.data["run_id"] for s in event_tap.matching(subjects.JOB_SUBMITTED)] == [good]
