"""Delivering messages again: capture what the dispatch work queue carried (it keeps nothing
once consumed), publish stored messages again under new ``Nats-Msg-Id``s, and take a
snapshot of every effect a second delivery could have."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from controlroom_contracts import subjects
from controlroom_devstack.ledger import callback_run_id
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stream_reader import Stored, read_stream

MSG_ID = "Nats-Msg-Id"


class DispatchCapture:
    """Every dispatch command seen on ``controlroom.dispatch.>`` (a core subscription)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Client | None = None
        self.seen: list[Stored] = []

    async def start(self) -> None:
        self._client = await nats.connect(self._url)
        await self._client.subscribe(subjects.ALL_DISPATCH, cb=self._on_message)
        await self._client.flush()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _on_message(self, msg: Msg) -> None:
        self.seen.append(
            Stored(
                subject=msg.subject,
                data=json.loads(msg.data),
                headers=dict(msg.headers or {}),
                sequence=0,
                stored_at=datetime.now(UTC),
                raw=msg.data,
            )
        )


async def publish_again(
    url: str, messages: Iterable[Stored], headers: Mapping[str, str | None] | None = None
) -> int:
    """Publish each message again, body and headers as they were (so the same event id) but
    under a new ``Nats-Msg-Id``, so JetStream stores it again; ``headers`` changes some
    (None removes one). Returns how many were stored."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        count = 0
        for message in messages:
            sent = {k: v for k, v in message.headers.items() if k != MSG_ID}
            for name, value in (headers or {}).items():
                if value is None:
                    sent.pop(name, None)
                else:
                    sent[name] = value
            sent[MSG_ID] = f"replay-{uuid.uuid4()}"
            await js.publish(message.subject, message.raw, headers=sent)
            count += 1
        return count
    finally:
        await client.close()


@dataclass
class Snapshot:
    """Every effect of a tenant's messages that a second delivery could repeat."""

    event_ids: dict[str, str | None] = field(default_factory=dict)
    """Event id -> its run (None for an event about no run)."""
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[Any]] = field(default_factory=dict)
    webhook_ids: set[tuple[str | None, str, str]] = field(default_factory=set)
    """(run, receiver path, webhook-id)."""
    edges: set[tuple[str, int, str | None]] = field(default_factory=set)

    def differences(self, later: Snapshot) -> list[str]:
        """What ``later`` has that this had not, or changed."""
        found = []
        new_events = {e: r for e, r in later.event_ids.items() if e not in self.event_ids}
        if new_events:
            found.append(f"new events {new_events}")
        for run_id, view in self.views.items():
            if later.views.get(run_id) != view:
                found.append(f"run {run_id}: {view} became {later.views.get(run_id)}")
            if later.histories.get(run_id) != self.histories.get(run_id):
                found.append(
                    f"run {run_id}: history of {len(self.histories.get(run_id, []))} entries "
                    f"became {len(later.histories.get(run_id, []))}"
                )
        deliveries = {w for w in later.webhook_ids - self.webhook_ids if w[0] in self.views}
        if deliveries:
            found.append(f"new deliveries {deliveries}")
        if later.edges - self.edges:
            found.append(f"new lineage edges {later.edges - self.edges}")
        return found


async def _pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path, params=query)).raise_for_status().json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def snapshot(
    nats_url: str,
    api: httpx.AsyncClient,
    receiver: CallbackReceiver,
    tenant: str,
    run_ids: Iterable[str],
) -> tuple[Snapshot, list[Stored]]:
    """The tenant's effects now, and the stored events they came from."""
    stored = [m for m in await read_stream(nats_url) if m.data.get("tenant_id") == tenant]
    taken = Snapshot(event_ids={m.event_id: m.run_id for m in stored})
    for run_id in run_ids:
        taken.views[run_id] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        taken.histories[run_id] = await _pages(api, f"/api/v1/runs/{run_id}/events")
    for received in list(receiver.received):
        taken.webhook_ids.add(
            (callback_run_id(received), received.path, received.headers.get("webhook-id", ""))
        )
    edges = await _pages(api, "/api/v1/lineage/edges", include_deleted="true")
    # An edge is one per (source, target, job) however often it is recorded: a second
    # recording would show as a run counted again, not as a new edge.
    taken.edges = {(edge["id"], edge["run_count"], edge["deleted_at"]) for edge in edges}
    return taken, stored
