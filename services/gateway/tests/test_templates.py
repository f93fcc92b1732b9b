"""Job templates: versions, roles, tenancy, running one with inputs, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from controlroom_contracts import subjects
from controlroom_devstack.tap import EventTap

JOB: dict[str, Any] = {
    "job_type": "diagram_export",
    "spec": {"text": "nightly orders", "inputs": {"source": "raw.orders", "target": "gold.o"}},
    "code": {"files": [{"path": "main.py", "content": "print('hi')"}]},
    "created_by": "etl-team",
}


def _as(token: Callable[..., str], **claims: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**claims)}"}


async def _save(
    client: httpx.AsyncClient, token: Callable[..., str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/api/v1/templates", json=body, headers=_as(token, role="admin"))


async def test_versions_roles_and_tenancy(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    first = await _save(client, token, {"name": "orders", "job": JOB})
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    changed = JOB | {"spec": JOB["spec"] | {"text": "nightly orders v2"}}
    second = await _save(client, token, {"name": "orders", "description": "v2", "job": changed})
    assert second.json()["version"] == 2

    viewer = _as(token, role="viewer")
    latest = (await client.get("/api/v1/templates/orders", headers=viewer)).json()
    assert (latest["version"], latest["job"]["spec"]["text"]) == (2, "nightly orders v2")
    old = (await client.get("/api/v1/templates/orders?version=1", headers=viewer)).json()
    assert old["job"]["spec"]["text"] == "nightly orders"
    listed = (await client.get("/api/v1/templates", headers=viewer)).json()
    assert [(t["name"], t["version"]) for t in listed["items"]] == [("orders", 2)]

    # Saving and deleting are the admin's; an operator may not.
    assert (
        await client.post("/api/v1/templates", json={"name": "x", "job": JOB})
    ).status_code == 403
    assert (await client.delete("/api/v1/templates/orders")).status_code == 403
    # Another tenant sees nothing, and cannot run or delete it.
    other = _as(token, tenant="globex", role="admin")
    assert (await client.get("/api/v1/templates/orders", headers=other)).status_code == 404
    assert (await client.get("/api/v1/templates", headers=other)).json()["items"] == []
    assert (
        await client.post("/api/v1/templates/orders/run", json={}, headers=other)
    ).status_code == 404
    assert (await client.delete("/api/v1/templates/orders", headers=other)).status_code == 404

    admin = _as(token, role="admin")
    assert (await client.delete("/api/v1/templates/orders", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/templates/orders")).status_code == 404
    assert (await client.delete("/api/v1/templates/orders", headers=admin)).status_code == 404


async def test_running_a_template_merges_inputs_and_submits_a_run(
    client: httpx.AsyncClient, token: Callable[..., str], event_tap: EventTap
) -> None:
    await _save(client, token, {"name": "orders", "job": JOB})
    await _save(client, token, {"name": "orders", "job": JOB | {"created_by": "v2"}})
    response = await client.post(
        "/api/v1/templates/orders/run",
        json={"version": 1, "inputs": {"target": "gold.orders_eu"}, "created_by": "cron"},
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    submitted = await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)
    job = submitted.data["job"]
    assert job["spec"]["inputs"] == {"source": "raw.orders", "target": "gold.orders_eu"}
    assert job["created_by"] == "cron"
    assert job["code"]["files"] == JOB["code"]["files"]
    run = (await client.get(f"/api/v1/runs/{run_id}")).json()
    assert run["status"] == "queued" and run["created_by"] == "cron"

    viewer = _as(token, role="viewer")
    refused = await client.post("/api/v1/templates/orders/run", json={}, headers=viewer)
    assert refused.status_code == 403
    huge = await client.post("/api/v1/templates/orders/run", json={"version": 2**40})
    assert huge.status_code == 422  # found by schemathesis: it reached Postgres as a 500
    missing = await client.post("/api/v1/templates/orders/run", json={"version": 9})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_bad_templates_are_refused_with_the_field_named(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    traversal = {"files": [{"path": "../x", "content": ""}]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "Has Spaces", "job": JOB}, "name"),
        ({"name": "../etc", "job": JOB}, "name"),
        ({"name": "ok", "description": "d" * 2001, "job": JOB}, "description"),
        ({"name": "ok", "job": JOB | {"job_type": "no_such_type"}}, "job_type"),
        ({"name": "ok", "job": JOB | {"code": traversal}}, "files.0.path"),
        ({"name": "ok"}, "job"),
        ({"name": "ok\u0000", "job": JOB}, "name"),
    ]
    for body, field in cases:
        response = await _save(client, token, body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in response.text, (field, response.text)
    oversized = await _save(
        client, token, {"name": "big", "job": JOB | {"spec": {"text": "x" * 70_000}}}
    )
    assert oversized.status_code == 413
    assert (await client.get("/api/v1/templates/Bad%20Name")).status_code == 422
    assert (await client.get("/api/v1/templates?cursor=%%%")).status_code == 422


async def test_listing_pages_by_name(client: httpx.AsyncClient, token: Callable[..., str]) -> None:
    for name in ("c-job", "a-job", "b-job"):
        assert (await _save(client, token, {"name": name, "job": JOB})).status_code == 201
    names: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/templates", params=params)).json()
        names += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["a-job", "b-job", "c-job"]
