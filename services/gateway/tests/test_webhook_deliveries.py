"""Webhook deliveries through the REST API (admin), answered by the notifier.

The gateway and the notifier run in-process on the session's real nats-server and a fresh
Postgres database; deliveries go to real local HTTP receivers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from controlroom_contracts import subjects
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap, publish_finished_run
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app as gateway_app
from controlroom_gateway.settings import GatewaySettings
from controlroom_notifier.app import create_app as notifier_app
from controlroom_notifier.settings import DEVELOPMENT_SECRET, NotifierSettings

PROBLEM = "application/problem+json"
DELIVERIES = "/api/v1/webhook-deliveries"


@pytest.fixture
async def api(
    settings: GatewaySettings, token: Callable[..., str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The notifier, then the gateway, on the same broker and database; a client with an
    admin token of tenant acme."""
    notifier = NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=settings.nats_url,
        database_url=settings.database_url,
        delivery_poll_interval_seconds=0.2,
        webhook_max_attempts=1,
    )
    gateway = gateway_app(settings)
    async with running(notifier_app(notifier)), running(gateway):
        transport = httpx.ASGITransport(app=gateway)
        headers = {"Authorization": f"Bearer {token(role='admin')}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as http:
            yield http


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver(fail_first=1)  # 500 once, then 204
    await server.start()
    yield server
    await server.stop()


async def _failed_delivery(tap: EventTap, url: str, tenant: str = "acme") -> dict[str, Any]:
    run_id = await publish_finished_run(tap, tenant, url)
    failed = await tap.wait_for(subjects.WEBHOOK_FAILED, lambda d: d["run_id"] == run_id)
    return failed.data


async def test_admins_list_failed_deliveries_and_redeliver_them_under_the_same_webhook_id(
    api: httpx.AsyncClient, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    failed = await _failed_delivery(event_tap, receiver.url("hook"))
    listed = await api.get(DELIVERIES, params={"status": "failed"})
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["id"] == failed["delivery_id"] and item["run_id"] == failed["run_id"]
    assert item["status"] == "failed" and item["attempts"] == 1 and item["status_code"] == 500
    assert item["latency_ms"] is not None and item["next_attempt_at"] is None
    assert listed.json()["next_cursor"] is None

    redelivered = await api.post(f"{DELIVERIES}/{item['id']}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    assert redelivered.json()["status"] == "pending" and redelivered.json()["attempts"] == 0
    second = await receiver.wait_for(lambda _r: len(receiver.received) == 2)
    assert second.headers["webhook-id"] == receiver.received[0].headers["webhook-id"] == item["id"]
    Webhook(DEVELOPMENT_SECRET).verify(second.body, second.headers)

    async def delivered() -> list[dict[str, Any]]:
        params = {"status": "delivered", "run_id": failed["run_id"]}
        items: list[dict[str, Any]] = (await api.get(DELIVERIES, params=params)).json()["items"]
        return items

    [done] = await eventually(delivered, what="the redelivered delivery listed as delivered")
    assert done["status_code"] == 204 and done["attempts"] == 1
    assert done["redelivered_at"] is not None

    # In bulk: only failed ones, and only the tenant's own.
    down = CallbackReceiver(fail_first=1_000)
    await down.start()
    try:
        for tenant in ("acme", "acme", "globex"):
            await _failed_delivery(event_tap, down.url(tenant), tenant)
        bulk = await api.post(f"{DELIVERIES}/redeliver", params={"status": "failed"})
        assert bulk.status_code == 202, bulk.text
        assert bulk.json() == {"redelivered": 2}
        await down.wait_for(lambda _r: len(down.matching(lambda r: r.path == "/acme")) == 4)
        assert len(down.matching(lambda r: r.path == "/globex")) == 1
    finally:
        await down.stop()

    first = (await api.get(DELIVERIES, params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await api.get(DELIVERIES, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert rest["next_cursor"] is None
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3  # acme's three, newest first
    assert ids[-1] == item["id"]


async def test_the_delivery_api_refuses_other_roles_tenants_and_malformed_input(
    api: httpx.AsyncClient, event_tap: EventTap, receiver: CallbackReceiver, token: Any
) -> None:
    failed = await _failed_delivery(event_tap, receiver.url("hook"))
    one = f"{DELIVERIES}/{failed['delivery_id']}/redeliver"
    calls = [
        ("GET", DELIVERIES, {}),
        ("POST", one, {}),
        ("POST", f"{DELIVERIES}/redeliver", {"status": "failed"}),
    ]

    for role in ("viewer", "operator"):
        headers = {"Authorization": f"Bearer {token(role=role)}"}
        for method, path, params in calls:
            refused = await api.request(method, path, params=params, headers=headers)
            assert refused.status_code == 403, (role, path, refused.text)
            assert refused.headers["content-type"] == PROBLEM
    for method, path, params in calls:
        anonymous = await api.request(method, path, params=params, headers={"Authorization": ""})
        assert anonymous.status_code == 401

    # Another tenant's admin: not found, and its own list is empty.
    other = {"Authorization": f"Bearer {token(tenant='globex', role='admin')}"}
    hidden = await api.post(one, headers=other)
    assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM
    assert (await api.get(DELIVERIES, headers=other)).json()["items"] == []
    assert (await api.post(f"{DELIVERIES}/{uuid4()}/redeliver")).status_code == 404

    malformed = [
        ("POST", f"{DELIVERIES}/not-a-uuid/redeliver", {}, "path.delivery_id"),
        ("GET", DELIVERIES, {"status": "lost"}, "query.status"),
        ("GET", DELIVERIES, {"run_id": "12"}, "query.run_id"),
        ("GET", DELIVERIES, {"limit": "0"}, "query.limit"),
        ("GET", DELIVERIES, {"cursor": "not ours"}, "query.cursor"),
        ("POST", f"{DELIVERIES}/redeliver", {}, "query.status"),
        ("POST", f"{DELIVERIES}/redeliver", {"status": "delivered"}, "query.status"),
        ("POST", f"{DELIVERIES}/redeliver", {"status": "failed", "run_id": "x"}, "query.run_id"),
    ]
    for method, path, params, field in malformed:
        bad = await api.request(method, path, params=params)
        assert bad.status_code == 422, (path, params, bad.text)
        assert bad.headers["content-type"] == PROBLEM
        assert field in [e["field"] for e in bad.json()["errors"]], bad.json()

    # Nothing above changed the delivery.
    [still] = (await api.get(DELIVERIES)).json()["items"]
    assert still["status"] == "failed" and still["redelivered_at"] is None
