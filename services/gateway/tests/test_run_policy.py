"""Scheduling fields of a job (lane, priority, retry, timeout) at the gateway: refused when
bad, carried when good (the queue explained by the scheduler is in tests/test_queue_api.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlroom_contracts import subjects
from controlroom_devstack.tap import EventTap

PROBLEM = "application/problem+json"


def job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "spark_etl",
        "spec": {"text": "copy", "inputs": {"source": "raw.a", "target": "gold.a"}},
        "code": {"files": [{"path": "jobs/etl.py", "content": "print('hi')"}]},
        "created_by": "ci",
    }
    return body | overrides


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lane": "Z"}, "body.lane"),
        ({"lane": "bad lane!"}, "body.lane"),
        ({"priority": 0}, "body.priority"),
        ({"priority": 6}, "body.priority"),
        ({"timeout_seconds": 3601}, "body.timeout_seconds"),
        ({"timeout_seconds": 0}, "body.timeout_seconds"),
        ({"retry": {"max_attempts": 0}}, "body.retry.max_attempts"),
        ({"retry": {"max_attempts": 11}}, "body.retry.max_attempts"),
        ({"retry": {"retry_on_exit_codes": [0]}}, "body.retry.retry_on_exit_codes.0"),
        ({"retry": {"unknown": 1}}, "body.retry.unknown"),
    ],
)
async def test_a_bad_scheduling_field_is_422_naming_it_and_nothing_is_queued(
    client: httpx.AsyncClient, event_tap: EventTap, overrides: dict[str, Any], field: str
) -> None:
    refused = await client.post("/api/v1/jobs/run", json=job(**overrides))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in refused.json()["errors"]]
    checked = await client.post("/api/v1/jobs/validate", json=job(**overrides))
    assert checked.json()["valid"] is False
    good = (await client.post("/api/v1/jobs/run", json=job())).json()["run_id"]
    await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == good)
    assert [s.data["run_id"] for s in event_tap.matching(subjects.JOB_SUBMITTED)] == [good]


async def test_a_jobs_scheduling_fields_travel_with_its_submission(
    client: httpx.AsyncClient, event_tap: EventTap
) -> None:
    policy = {
        "lane": "C",
        "priority": 1,
        "timeout_seconds": 120,
        "retry": {"max_attempts": 5, "retry_on_exit_codes": [75], "retry_on_timeout": True},
    }
    run_id = (await client.post("/api/v1/jobs/run", json=job(**policy))).json()["run_id"]
    seen = await event_tap.wait_for(subjects.JOB_SUBMITTED, lambda d: d["run_id"] == run_id)
    sent = seen.data["job"]
    assert (sent["lane"], sent["priority"], sent["timeout_seconds"]) == ("C", 1, 120)
    assert sent["retry"]["max_attempts"] == 5 and sent["retry"]["retry_on_exit_codes"] == [75]
    view = (await client.get(f"/api/v1/runs/{run_id}")).json()
    assert view["priority"] == 1 and view["status"] == "queued"


async def test_limits_without_the_scheduler_is_503_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/limits")
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
