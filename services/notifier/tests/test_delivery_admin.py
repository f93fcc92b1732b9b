"""Deliveries that use up their attempts are kept as failed; admins list and redeliver them,
under the same webhook-id, over request-reply.

Real nats-server, Postgres and local HTTP receivers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import pytest
from standardwebhooks.webhooks import Webhook

from controlroom_contracts import subjects
from controlroom_contracts.management import (
    ListWebhookDeliveries,
    RedeliverWebhookDeliveries,
    RedeliverWebhookDelivery,
)
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap, publish_finished_run
from controlroom_devstack.waiting import eventually
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import DEVELOPMENT_SECRET, NotifierSettings


@pytest.fixture
async def notifier(nats_url: str, database_url: str) -> AsyncIterator[None]:
    settings = NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        delivery_poll_interval_seconds=0.2,
        webhook_max_attempts=2,
        webhook_max_backoff_seconds=0.2,
    )
    async with running(create_app(settings)):
        yield


async def _listed(tap: EventTap, tenant: str = "t1", **filters: Any) -> list[dict[str, Any]]:
    answer = await tap.ask(ListWebhookDeliveries(tenant_id=tenant, **filters))
    items: list[dict[str, Any]] = answer["items"]
    return items


@pytest.mark.usefixtures("notifier")
async def test_an_exhausted_delivery_is_kept_failed_and_redelivered_under_the_same_id(
    event_tap: EventTap,
) -> None:
    # 500 twice (both attempts), then 204.
    receiver = CallbackReceiver(fail_first=2)
    await receiver.start()
    try:
        run_id = await publish_finished_run(event_tap, "t1", receiver.url("flaky"))
        failed = await event_tap.wait_for(subjects.WEBHOOK_FAILED, lambda d: d["run_id"] == run_id)
        assert failed.data["attempts"] == 2

        [item] = await _listed(event_tap, status="failed")
        assert item["id"] == failed.data["delivery_id"] and item["run_id"] == run_id
        assert item["attempts"] == 2 and item["status_code"] == 500
        assert item["last_error"] == "HTTP 500: try again"
        assert item["latency_ms"] is not None and item["latency_ms"] >= 0
        assert item["last_attempt_at"] is not None and item["next_attempt_at"] is None
        assert item["delivered_at"] is None and item["redelivered_at"] is None
        assert await _listed(event_tap, status="delivered") == []
        assert await _listed(event_tap, "t2") == []  # another tenant sees none of it

        redelivered = await event_tap.ask(
            RedeliverWebhookDelivery(tenant_id="t1", delivery_id=item["id"], requested_by="a")
        )
        assert redelivered["status"] == "pending" and redelivered["attempts"] == 0
        assert redelivered["redelivered_at"] is not None
        delivered = await event_tap.wait_for(
            subjects.WEBHOOK_DELIVERED, lambda d: d["delivery_id"] == item["id"]
        )
        assert delivered.data["attempts"] == 1
        assert {r.headers["webhook-id"] for r in receiver.received} == {item["id"]}
        Webhook(DEVELOPMENT_SECRET).verify(
            receiver.received[-1].body, receiver.received[-1].headers
        )

        async def listed_delivered() -> list[dict[str, Any]]:
            return await _listed(event_tap, status="delivered", run_id=UUID(run_id))

        [done] = await eventually(listed_delivered, what="the delivery listed as delivered")
        assert done["status_code"] == 204 and done["attempts"] == 1
        assert done["delivered_at"] is not None and done["next_attempt_at"] is None

        # A delivered one may be sent again too (as Svix and Stripe allow): same id.
        again = await event_tap.ask(
            RedeliverWebhookDelivery(tenant_id="t1", delivery_id=item["id"], requested_by="a")
        )
        assert again["status"] == "pending"
        await receiver.wait_for(lambda _r: len(receiver.received) == 4)
        assert receiver.received[-1].headers["webhook-id"] == item["id"]
    finally:
        await receiver.stop()


async def _failures(tap: EventTap, run_id: str, count: int) -> bool:
    return len(tap.matching(subjects.WEBHOOK_FAILED, lambda d: d["run_id"] == run_id)) >= count


@pytest.mark.usefixtures("notifier")
async def test_redelivering_all_failed_touches_only_the_tenants_failed_ones(
    event_tap: EventTap,
) -> None:
    down = CallbackReceiver(fail_first=1_000)  # answers 500 to everything
    up = CallbackReceiver()
    await down.start()
    await up.start()
    try:
        mine = [await publish_finished_run(event_tap, "t1", down.url(f"t1-{i}")) for i in range(2)]
        theirs = await publish_finished_run(event_tap, "t2", down.url("t2"))
        fine = await publish_finished_run(event_tap, "t1", up.url("fine"))
        for run_id in [*mine, theirs]:
            await eventually(partial(_failures, event_tap, run_id, 1), what=f"{run_id} failed")
        await event_tap.wait_for(subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == fine)

        one_run = await event_tap.ask(
            RedeliverWebhookDeliveries(tenant_id="t1", run_id=UUID(mine[0]), requested_by="a")
        )
        assert one_run == {"redelivered": 1}
        # Still answered 500: it fails again, after two more attempts.
        await eventually(
            partial(_failures, event_tap, mine[0], 2), what="the redelivered one failing again"
        )
        counted = await event_tap.ask(RedeliverWebhookDeliveries(tenant_id="t1", requested_by="a"))
        assert counted == {"redelivered": 2}
        for item in await _listed(event_tap):
            redelivered = item["run_id"] in mine
            assert (item["redelivered_at"] is not None) is redelivered, item
        # t2's failed delivery is untouched.
        [t2] = await _listed(event_tap, "t2")
        assert t2["status"] == "failed" and t2["redelivered_at"] is None
    finally:
        await down.stop()
        await up.stop()


@pytest.mark.usefixtures("notifier")
async def test_listing_pages_newest_first_and_other_tenants_ids_are_not_found(
    event_tap: EventTap,
) -> None:
    receiver = CallbackReceiver()
    await receiver.start()
    try:
        runs = [
            await publish_finished_run(event_tap, "t1", receiver.url(f"r{i}")) for i in range(3)
        ]
        await receiver.wait_for(lambda _r: len(receiver.received) == 3)

        async def all_three() -> list[dict[str, Any]]:
            items = await _listed(event_tap)
            return items if len(items) == 3 else []

        everything = await eventually(all_three, what="three deliveries listed")
        first = await event_tap.ask(ListWebhookDeliveries(tenant_id="t1", limit=2))
        assert first["more"] is True and len(first["items"]) == 2
        last = first["items"][-1]
        after = {"created_at": last["created_at"], "id": last["id"]}
        second = await event_tap.ask(
            ListWebhookDeliveries.model_validate({"tenant_id": "t1", "limit": 2, "after": after})
        )
        assert second["more"] is False
        paged = [i["id"] for i in first["items"] + second["items"]]
        assert paged == [i["id"] for i in everything]
        stamps = [i["created_at"] for i in everything]
        assert stamps == sorted(stamps, reverse=True)
        assert {i["run_id"] for i in everything} == set(runs)

        hidden = await event_tap.ask(
            RedeliverWebhookDelivery(tenant_id="t2", delivery_id=paged[0], requested_by="x")
        )
        assert hidden["code"] == "not_found"
        unknown = await event_tap.ask(
            RedeliverWebhookDelivery(tenant_id="t1", delivery_id=uuid4(), requested_by="x")
        )
        assert unknown["code"] == "not_found"
        garbage = await event_tap.client.request(
            ListWebhookDeliveries.subject, json.dumps({"tenant_id": "t1", "status": "x"}).encode()
        )
        assert json.loads(garbage.data)["code"] == "invalid"
    finally:
        await receiver.stop()
