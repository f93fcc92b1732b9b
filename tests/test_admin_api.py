"""Admin management through the REST API, answered by the services that own it.

The gateway, lineage and notifier run in-process on the session's real nats-server and a
fresh Postgres database; webhook deliveries go to a real local HTTP receiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap
from controlroom_gateway.app import create_app as gateway_app
from controlroom_gateway.auth import mint_token
from controlroom_gateway.settings import GatewaySettings
from controlroom_lineage.app import create_app as lineage_app
from controlroom_lineage.settings import LineageSettings
from controlroom_notifier.app import create_app as notifier_app
from controlroom_notifier.settings import NotifierSettings
from controlroom_runtime.objectstore import ObjectStoreSettings

SECRET = "admin-api-secret-admin-api-secret-32"
LOOPBACK = ["127.0.0.0/8"]


def _headers(role: str = "admin", tenant: str = "acme") -> dict[str, str]:
    token = mint_token(SECRET, tenant_id=tenant, subject=f"{role}-1", role=role, ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "database_url": database_url}
    gateway = gateway_app(
        GatewaySettings(
            jwt_secret=SECRET,
            callback_allowlist=LOOPBACK,
            object_store=ObjectStoreSettings(directory=tmp_path / "objects"),
            max_body_bytes=16 * 1024,
            **common,
        )
    )
    notifier = NotifierSettings(
        callback_allowlist=LOOPBACK, delivery_poll_interval_seconds=0.2, **common
    )
    async with (
        running(lineage_app(LineageSettings(**common))),
        running(notifier_app(notifier)),
        running(gateway),
    ):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=_headers()
        ) as client:
            yield client


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_lineage_edges_are_managed_by_admins_and_read_by_viewers(
    api: httpx.AsyncClient,
) -> None:
    body = {"source": "supabase://crm.accounts", "target": "silver.accounts"}
    created = await api.post("/api/v1/lineage/edges", json=body | {"metadata": {"by": "hand"}})
    assert created.status_code == 201, created.text
    edge = created.json()
    assert edge["origin"] == "manual" and edge["source"] == "crm.accounts"
    again = await api.post("/api/v1/lineage/edges", json=body | {"metadata": {"by": "hand"}})
    assert again.status_code == 200 and again.json()["id"] == edge["id"]

    viewer = _headers("viewer")
    graph = await api.get(
        "/api/v1/lineage/graph", params={"entity": "silver.accounts"}, headers=viewer
    )
    assert graph.json()["upstream"] == [
        {"entity": "crm.accounts", "job_id": None, "job": "manual", "depth": 1}
    ]
    for i in range(3):
        added = await api.post(
            "/api/v1/lineage/edges", json={"source": f"raw.p{i}", "target": "silver.accounts"}
        )
        assert added.status_code == 201
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/lineage/edges", params=params, headers=viewer)).json()
        pages.append([e["id"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 1] and pages[0][0] == edge["id"]

    # Roles: a viewer and an operator may not change the graph.
    for role in ("viewer", "operator"):
        refused = await api.post("/api/v1/lineage/edges", json=body, headers=_headers(role))
        assert refused.status_code == 403
        refused = await api.delete(f"/api/v1/lineage/edges/{edge['id']}", headers=_headers(role))
        assert refused.status_code == 403
    # Another tenant's admin sees nothing and deletes nothing.
    other = _headers(tenant="globex")
    assert (await api.get("/api/v1/lineage/edges", headers=other)).json()["items"] == []
    hidden = await api.delete(f"/api/v1/lineage/edges/{edge['id']}", headers=other)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"

    assert (await api.delete(f"/api/v1/lineage/edges/{edge['id']}")).status_code == 204
    assert (await api.delete(f"/api/v1/lineage/edges/{edge['id']}")).status_code == 204
    after = await api.get("/api/v1/lineage/graph", params={"entity": "silver.accounts"})
    assert "crm.accounts" not in [n["entity"] for n in after.json()["upstream"]]
    kept = await api.get(
        "/api/v1/lineage/edges", params={"entity": "crm.accounts", "include_deleted": "true"}
    )
    assert [e["deleted_at"] is not None for e in kept.json()["items"]] == [True]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "a.b"}, "body.target"),
        ({"source": "a.b", "target": "c.d", "edge_type": "Has Space"}, "body.edge_type"),
        ({"source": "a.b", "target": "c.d", "extra": 1}, "body.extra"),
        ({"source": "a\u0000b", "target": "c.d"}, "body.source"),
        ({"source": "a.b", "target": "c.d", "metadata": {"k": 1}}, "body.metadata.k"),
    ],
)
async def test_malformed_edges_are_422_problems(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/api/v1/lineage/edges", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_edge_refused_by_the_lineage_service_is_a_422_problem(
    api: httpx.AsyncClient,
) -> None:
    loop = await api.post("/api/v1/lineage/edges", json={"source": "a.b", "target": "a.b"})
    assert loop.status_code == 422 and "itself" in loop.json()["detail"]
    unknown = await api.delete(f"/api/v1/lineage/edges/{uuid4()}")
    assert unknown.status_code == 404
    bad_id = await api.delete("/api/v1/lineage/edges/not-a-uuid")
    assert bad_id.status_code == 422


async def test_webhook_endpoints_get_signed_terminal_events(
    api: httpx.AsyncClient, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    created = await api.post(
        "/api/v1/webhook-endpoints",
        json={"url": receiver.url("acme"), "description": "ops channel"},
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    secret = endpoint.pop("secret")
    assert secret.startswith("whsec_") and endpoint["created_by"] == "admin-1"

    shown = await api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}")
    assert shown.json() == endpoint  # the secret is never shown again
    listed = await api.get("/api/v1/webhook-endpoints")
    assert listed.json() == {"items": [endpoint], "next_cursor": None}

    done = RunCompleted(
        tenant_id="acme", run_id=uuid4(), attempt=1, summary="42 rows", finished_at=utc_now()
    )
    await event_tap.publish(done.subject, done.model_dump_json().encode())
    got = await receiver.wait_for(lambda r: r.path == "/acme")
    Webhook(secret).verify(got.body, got.headers)
    assert got.json()["data"]["summary"] == "42 rows"

    for role in ("viewer", "operator"):
        assert (await api.get("/api/v1/webhook-endpoints", headers=_headers(role))).status_code == (
            403
        )
    other = _headers(tenant="globex")
    assert (
        await api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=other)
    ).status_code == 404
    assert (
        await api.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=other)
    ).status_code == 404
    assert (await api.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
    assert (await api.get("/api/v1/webhook-endpoints")).json()["items"] == []


async def test_webhook_endpoints_page_through_a_cursor(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        created = await api.post(
            "/api/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:9/hook{i}"}
        )
        ids.append(created.json()["id"])
    first = (await api.get("/api/v1/webhook-endpoints", params={"limit": 2})).json()
    second = (
        await api.get(
            "/api/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    third = (
        await api.get(
            "/api/v1/webhook-endpoints", params={"limit": 2, "cursor": second["next_cursor"]}
        )
    ).json()
    seen = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert seen == ids and third["next_cursor"] is None
    bad = await api.get("/api/v1/webhook-endpoints", params={"cursor": "garbage!"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data"}, 422),  # cloud metadata: never
        ({"url": "http://10.1.2.3/hook"}, 422),  # private, not allow-listed
        ({"url": "ftp://example.com/hook"}, 422),
        ({"url": "http://127.0.0.1:9/x", "event_types": []}, 422),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["run.exploded"]}, 422),
        ({"url": "http://127.0.0.1:9/" + "x" * 2100}, 422),
        ({"url": "http://127.0.0.1:9/x", "description": "d" * 20_000}, 413),
    ],
)
async def test_bad_webhook_endpoints_are_refused(
    api: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    response = await api.post("/api/v1/webhook-endpoints", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.get("/api/v1/webhook-endpoints")).json()["items"] == []


async def test_malformed_json_and_no_token_are_refused(api: httpx.AsyncClient) -> None:
    broken = await api.post(
        "/api/v1/webhook-endpoints",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422
    anonymous = await api.post(
        "/api/v1/lineage/edges",
        json={"source": "a.b", "target": "c.d"},
        headers={"Authorization": ""},
    )
    assert anonymous.status_code == 401
