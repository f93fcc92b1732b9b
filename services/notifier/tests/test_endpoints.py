"""Tenant webhook endpoints: managed over request-reply, delivered signed with their own secret.

Real nats-server, Postgres and a local HTTP receiver.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from standardwebhooks.webhooks import Webhook

from controlroom_contracts import subjects
from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCancelled, RunCompleted, RunFailed
from controlroom_contracts.management import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    GetWebhookEndpoint,
    ListWebhookEndpoints,
    WebhookEndpointIn,
)
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import NotifierSettings


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver(fail_first=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def notifier(nats_url: str, database_url: str) -> AsyncIterator[None]:
    settings = NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        delivery_poll_interval_seconds=0.2,
    )
    async with running(create_app(settings)):
        yield


async def _create(tap: EventTap, url: str, tenant: str = "t1", **fields: Any) -> dict[str, Any]:
    endpoint = WebhookEndpointIn.model_validate({"url": url} | fields)
    return await tap.ask(
        CreateWebhookEndpoint(tenant_id=tenant, endpoint=endpoint, created_by="admin")
    )


def _completed(tenant: str = "t1") -> RunCompleted:
    return RunCompleted(
        tenant_id=tenant, run_id=uuid4(), attempt=1, summary="done", finished_at=utc_now()
    )


@pytest.mark.usefixtures("notifier")
async def test_terminal_events_reach_the_tenants_endpoints_signed_with_their_secret(
    event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    everything = await _create(event_tap, receiver.url("all"))
    failures_only = await _create(event_tap, receiver.url("failures"), event_types=["run.failed"])
    assert (
        everything["secret"].startswith("whsec_")
        and everything["secret"] != (failures_only["secret"])
    )
    assert everything["event_types"] == ["run.cancelled", "run.completed", "run.failed"]
    await event_tap.wait_for(
        subjects.WEBHOOK_ENDPOINT_ADDED, lambda d: d["endpoint_id"] == everything["id"]
    )
    assert "secret" not in json.dumps(event_tap.matching(subjects.WEBHOOK_ENDPOINT_ADDED)[0].data)

    done = _completed()
    await event_tap.publish(done.subject, done.model_dump_json().encode())
    got = await receiver.wait_for(lambda r: r.path == "/all")
    Webhook(everything["secret"]).verify(got.body, got.headers)  # raises if signed otherwise
    assert got.json()["type"] == "run.completed"
    assert got.json()["data"]["run_id"] == str(done.run_id)
    assert got.json()["data"]["status"] == "completed"
    delivered = await event_tap.wait_for(
        subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == str(done.run_id)
    )
    assert delivered.data["kind"] == "endpoint"
    assert delivered.data["endpoint_id"] == everything["id"]

    failed = RunFailed(
        tenant_id="t1",
        run_id=uuid4(),
        attempt=1,
        failure_reason=FailureReason.timeout,
        error="too slow",
        finished_at=utc_now(),
    )
    await event_tap.publish(failed.subject, failed.model_dump_json().encode())
    got_failure = await receiver.wait_for(lambda r: r.path == "/failures")
    Webhook(failures_only["secret"]).verify(got_failure.body, got_failure.headers)
    assert got_failure.json()["data"]["failure_reason"] == "timeout"
    await receiver.wait_for(lambda r: r.path == "/all" and r.json()["type"] == "run.failed")
    # The completion went to the endpoint that wants everything, not to the failures-only one.
    assert [r.json()["type"] for r in receiver.matching(lambda r: r.path == "/failures")] == [
        "run.failed"
    ]


@pytest.mark.usefixtures("notifier")
async def test_endpoints_never_cross_tenants_and_stop_when_deleted(
    event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    mine = await _create(event_tap, receiver.url("t1"))
    theirs = await _create(event_tap, receiver.url("t2"), tenant="t2")

    # Another tenant can neither read nor delete it.
    other = await event_tap.ask(GetWebhookEndpoint(tenant_id="t2", endpoint_id=mine["id"]))
    assert other["code"] == "not_found"
    gone = await event_tap.ask(
        DeleteWebhookEndpoint(tenant_id="t2", endpoint_id=mine["id"], deleted_by="x"),
    )
    assert gone["code"] == "not_found"
    listed = await event_tap.ask(ListWebhookEndpoints(tenant_id="t1"))
    assert [e["id"] for e in listed["items"]] == [mine["id"]] and not listed["more"]
    assert "secret" not in listed["items"][0]

    # A run of t2 reaches only t2's endpoint.
    done = _completed("t2")
    await event_tap.publish(done.subject, done.model_dump_json().encode())
    await receiver.wait_for(lambda r: r.path == "/t2")
    await event_tap.wait_for(subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == str(done.run_id))
    assert receiver.matching(lambda r: r.path == "/t1") == []

    deleted = await event_tap.ask(
        DeleteWebhookEndpoint(tenant_id="t2", endpoint_id=theirs["id"], deleted_by="x")
    )
    assert deleted == {"id": theirs["id"]}
    await event_tap.wait_for(
        subjects.WEBHOOK_ENDPOINT_REMOVED, lambda d: d["endpoint_id"] == theirs["id"]
    )
    again = await event_tap.ask(
        DeleteWebhookEndpoint(tenant_id="t2", endpoint_id=theirs["id"], deleted_by="x")
    )
    assert again["code"] == "not_found"

    # After the deletion t2's runs go nowhere; a later t1 run still reaches t1.
    cancelled = RunCancelled(
        tenant_id="t2", run_id=uuid4(), attempt=1, reason="user", finished_at=utc_now()
    )
    await event_tap.publish(cancelled.subject, cancelled.model_dump_json().encode())
    marker = _completed("t1")
    await event_tap.publish(marker.subject, marker.model_dump_json().encode())
    await receiver.wait_for(lambda r: r.path == "/t1")
    assert len(receiver.matching(lambda r: r.path == "/t2")) == 1


@pytest.mark.usefixtures("notifier")
async def test_malformed_or_invalid_requests_get_an_error_reply(event_tap: EventTap) -> None:
    garbage = await event_tap.client.request(subjects.WEBHOOK_ENDPOINT_CREATE, b"{", timeout=5)
    assert json.loads(garbage.data)["code"] == "invalid"
    bad_url = json.dumps(
        {"tenant_id": "t1", "created_by": "a", "endpoint": {"url": "ftp://example.com/x"}}
    )
    reply = await event_tap.client.request(
        subjects.WEBHOOK_ENDPOINT_CREATE, bad_url.encode(), timeout=5
    )
    assert json.loads(reply.data)["code"] == "invalid"
    unknown = await event_tap.ask(GetWebhookEndpoint(tenant_id="t1", endpoint_id=UUID(int=7)))
    assert unknown["code"] == "not_found"
