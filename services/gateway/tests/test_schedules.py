"""Schedules through the REST API, answered by a real scheduler started beside the gateway:
management, the runs their ticks submit, bad input, roles and tenancy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from controlroom_contracts import subjects
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_scheduler.app import create_app as scheduler_app
from controlroom_scheduler.settings import SchedulerSettings

JOB: dict[str, Any] = {
    "job_type": "diagram_export",
    "spec": {"text": "nightly orders", "inputs": {"source": "raw.orders", "target": "gold.o"}},
    "code": {"files": [{"path": "main.py", "content": "print('hi')"}]},
    "created_by": "etl-team",
}


@pytest.fixture
async def scheduler(nats_url: str, database_url: str) -> AsyncIterator[FastAPI]:
    """The real scheduler (it owns schedules), in-process, ticking every 0.2 s."""
    app = scheduler_app(
        SchedulerSettings(nats_url=nats_url, database_url=database_url, schedule_tick_seconds=0.2)
    )
    async with running(app):
        yield app


@pytest.fixture
def admin(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role='admin')}"}


async def _template(client: httpx.AsyncClient, admin: dict[str, str], name: str = "orders") -> None:
    saved = await client.post("/api/v1/templates", json={"name": name, "job": JOB}, headers=admin)
    assert saved.status_code == 201, saved.text


@pytest.mark.usefixtures("scheduler")
async def test_admins_create_list_get_pause_resume_and_delete_schedules(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    await _template(client, admin)
    body = {"template": "orders", "interval_seconds": 3600, "inputs": {"target": "gold.eu"}}
    created = await client.post("/api/v1/schedules", json=body, headers=admin)
    assert created.status_code == 201, created.text
    first = created.json()
    assert {k: first[k] for k in body} == body
    assert (first["version"], first["cron"], first["timezone"], first["paused"]) == (
        None,
        None,
        "UTC",
        False,
    )
    assert first["next_fire_at"] is not None and first["last_fired_at"] is None
    assert first["created_by"] == "tester"
    cron = {"template": "orders", "version": 1, "cron": "30 6 * * 1-5", "timezone": "Asia/Tokyo"}
    second = (await client.post("/api/v1/schedules", json=cron, headers=admin)).json()
    tokyo = datetime.fromisoformat(second["next_fire_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (tokyo.hour, tokyo.minute, tokyo.isoweekday() <= 5) == (6, 30, True)

    viewer = {"Authorization": f"Bearer {token(role='viewer')}"}
    page = (await client.get("/api/v1/schedules", params={"limit": 1}, headers=viewer)).json()
    assert [s["schedule_id"] for s in page["items"]] == [second["schedule_id"]]  # newest first
    rest = await client.get(
        "/api/v1/schedules", params={"limit": 1, "cursor": page["next_cursor"]}, headers=viewer
    )
    assert [s["schedule_id"] for s in rest.json()["items"]] == [first["schedule_id"]]
    assert rest.json()["next_cursor"] is None
    one = await client.get(f"/api/v1/schedules/{first['schedule_id']}", headers=viewer)
    assert one.json() == first

    path = f"/api/v1/schedules/{first['schedule_id']}"
    paused = (await client.post(f"{path}/pause", headers=admin)).json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    assert (await client.post(f"{path}/pause", headers=admin)).json() == paused  # idempotent
    resumed = (await client.post(f"{path}/resume", headers=admin)).json()
    assert resumed["paused"] is False and resumed["next_fire_at"] is not None

    deleted = await client.delete(path, headers=admin)
    assert deleted.status_code == 204
    gone = await client.get(path, headers=viewer)
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    assert (await client.delete(path, headers=admin)).status_code == 404
    listed = (await client.get("/api/v1/schedules", headers=viewer)).json()
    assert [s["schedule_id"] for s in listed["items"]] == [second["schedule_id"]]


@pytest.mark.usefixtures("scheduler")
async def test_each_tick_submits_a_run_showing_its_schedule_and_a_gone_template_is_skipped(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _template(client, admin)
    body = {"template": "orders", "interval_seconds": 1, "inputs": {"target": "gold.eu"}}
    schedule = (await client.post("/api/v1/schedules", json=body, headers=admin)).json()
    sid = schedule["schedule_id"]

    async def scheduled_runs() -> list[dict[str, Any]] | None:
        page = (await client.get("/api/v1/runs", params={"schedule_id": sid})).json()
        items: list[dict[str, Any]] = page["items"]
        return items if len(items) >= 2 else None

    runs = await eventually(scheduled_runs, what="two scheduled runs")
    ticks = sorted(datetime.fromisoformat(r["scheduled_for"]) for r in runs)
    assert ticks[0] >= datetime.fromisoformat(schedule["next_fire_at"]) and ticks[1] > ticks[0]
    run = (await client.get(f"/api/v1/runs/{runs[0]['run_id']}")).json()
    assert run["schedule_id"] == sid and run["scheduled_for"] == runs[0]["scheduled_for"]
    assert (run["job_type"], run["created_by"]) == ("diagram_export", "etl-team")
    unscheduled = await client.post("/api/v1/jobs/run", json=JOB)
    plain = (await client.get(f"/api/v1/runs/{unscheduled.json()['run_id']}")).json()
    assert plain["schedule_id"] is None and plain["scheduled_for"] is None

    # The template goes: the next tick submits nothing, says why, and the schedule goes on.
    assert (await client.delete("/api/v1/templates/orders", headers=admin)).status_code == 204

    async def skipped() -> dict[str, Any] | None:
        view: dict[str, Any] = (await client.get(f"/api/v1/schedules/{sid}")).json()
        return view if view["last_error"] else None

    view = await eventually(skipped, what="a skipped tick")
    assert "not found" in view["last_error"] and view["paused"] is False


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"template": "orders"}, "body.interval_seconds", "exactly one of cron and interval_seconds"),
    (
        {"template": "orders", "cron": "0 2 * * *", "interval_seconds": 60},
        "body.interval_seconds",
        "exactly one",
    ),
    ({"template": "orders", "cron": "61 * * * *"}, "body.cron", "out of range"),
    ({"template": "orders", "cron": "0 0 31 2 *"}, "body.cron", "failed to find next date"),
    ({"template": "orders", "cron": "* * *"}, "body.cron", "5 fields"),
    ({"template": "orders", "interval_seconds": 0}, "body.interval_seconds", "greater than"),
    (
        {"template": "orders", "cron": "@daily", "timezone": "Mars/Olympus_Mons"},
        "body.timezone",
        "unknown time zone",
    ),
    ({"template": "nowhere", "interval_seconds": 60}, "body.template", "no template 'nowhere'"),
    ({"template": "orders", "version": 9, "interval_seconds": 60}, "body.template", "version 9"),
    ({"template": "Not A Name", "interval_seconds": 60}, "body.template", "pattern"),
]


@pytest.mark.usefixtures("scheduler")
async def test_bad_schedules_are_refused_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: dict[str, str], event_tap: EventTap
) -> None:
    await _template(client, admin)
    for body, field, message in BAD:
        refused = await client.post("/api/v1/schedules", json=body, headers=admin)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        errors = refused.json()["errors"]
        assert [e["field"] for e in errors] == [field], (body, errors)
        assert message in errors[0]["message"], (body, errors)
    assert (await client.get("/api/v1/schedules", headers=admin)).json()["items"] == []
    # Refused by the gateway itself: the scheduler was never asked.
    assert event_tap.matching(subjects.SCHEDULE_CREATE) == []


@pytest.mark.usefixtures("scheduler")
async def test_another_tenants_schedules_are_not_found(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    await _template(client, admin)
    body = {"template": "orders", "interval_seconds": 3600}
    sid = (await client.post("/api/v1/schedules", json=body, headers=admin)).json()["schedule_id"]
    other = {"Authorization": f"Bearer {token(tenant='globex', role='admin')}"}
    path = f"/api/v1/schedules/{sid}"
    for method, url in [
        ("GET", path),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/resume"),
        ("DELETE", path),
    ]:
        hidden = await client.request(method, url, headers=other)
        assert hidden.status_code == 404, (method, url, hidden.text)
        assert hidden.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/schedules", headers=other)).json()["items"] == []
    # Nor can a schedule be made of another tenant's template.
    stolen = await client.post("/api/v1/schedules", json=body, headers=other)
    assert stolen.status_code == 422 and stolen.json()["errors"][0]["field"] == "body.template"
    assert (await client.get(path, headers=admin)).json()["paused"] is False
