"""Lineage through the REST API: OpenLineage in from the real openlineage-python client, the
graph as JSON, Mermaid and DOT, edges' deletion, restoration and audit, the dataset catalogue,
and every kind of bad input. The gateway and the lineage service run in-process on the
session's nats-server and a fresh Postgres database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import httpx
import pydot
import pytest
from fastapi import FastAPI
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from controlroom_devstack.pytest_plugin import running
from controlroom_lineage.app import create_app as lineage_app
from controlroom_lineage.settings import LineageSettings

from .live_server import serving

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python"


@pytest.fixture
async def api(
    gateway: FastAPI, nats_url: str, database_url: str, token: Callable[..., str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(lineage_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {token(role='admin')}"},
        ) as http:
            yield http


def _event(
    event_type: str = "COMPLETE",
    inputs: list[dict[str, str]] | None = None,
    outputs: list[dict[str, str]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": "2026-12-05T10:00:00.000Z",
        "run": {"runId": str(uuid4()), "facets": {"nominalTime": {"x": 1}}},
        "job": {"namespace": "airflow", "name": "orders_daily"},
        "inputs": inputs if inputs is not None else [{"namespace": "supabase", "name": "raw.o"}],
        "outputs": outputs
        if outputs is not None
        else [{"namespace": "s3://lake", "name": "curated/orders"}],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    return event | overrides


def _fields(response: httpx.Response) -> set[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {e["field"] for e in response.json()["errors"]}


async def test_the_openlineage_python_client_records_lineage_through_the_gateway(
    gateway: FastAPI, api: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    async with serving(gateway) as base_url:
        client = OpenLineageClient(
            transport=HttpTransport(
                HttpConfig(
                    url=base_url,
                    auth=ApiKeyTokenProvider({"apiKey": token(role="operator")}),
                    timeout=10,
                )
            )
        )
        run = Run(runId=str(uuid4()))
        job = Job(namespace="spark", name="curate_orders")
        inputs = [
            InputDataset(namespace="s3://landing", name="orders/2026/12"),
            InputDataset(namespace="postgres://db.internal:5432", name="shop.public.customers"),
        ]
        outputs = [OutputDataset(namespace="s3://lake", name="curated/orders")]
        for state in (RunState.START, RunState.COMPLETE):
            event = RunEvent(
                eventType=state,
                eventTime="2026-12-05T10:00:00.000Z",
                run=run,
                job=job,
                producer=PRODUCER,
                inputs=inputs,
                outputs=outputs,
            )
            # The client is synchronous (it blocks on its HTTP call): off the event loop.
            await asyncio.to_thread(client.emit, event)

    graph = await api.get(
        "/api/v1/lineage/graph",
        params={"entity": "s3://lake/curated/orders", "direction": "upstream"},
    )
    assert graph.status_code == 200, graph.text
    body = graph.json()
    assert sorted(n["entity"] for n in body["upstream"]) == [
        "postgres://db.internal:5432/shop.public.customers",
        "s3://landing/orders/2026/12",
    ]
    assert {(e["job"], e["origin"], e["latest_run_id"]) for e in body["edges"]} == {
        ("spark/curate_orders", "openlineage", str(run.runId))
    }
    dataset = await api.get("/api/v1/datasets/s3://lake/curated/orders")
    assert dataset.status_code == 200, dataset.text
    assert dataset.json()["last_produced"]["job"] == "spark/curate_orders"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["run"].pop("runId"), "body.run.runId"),
        (lambda e: e["run"].update(runId="not-a-uuid"), "body.run.runId"),
        (lambda e: e["job"].pop("name"), "body.job.name"),
        (lambda e: e.pop("eventTime"), "body.eventTime"),
        (lambda e: e.update(eventType="FINISHED"), "body.eventType"),
        (
            lambda e: e["inputs"].append({"namespace": "s3://lake", "name": "a/../b"}),
            "body.inputs.1",
        ),
        (lambda e: e["outputs"][0].update(name="x" * 1_100), "body.outputs.0.name"),
        (lambda e: e.update(inputs=[{"namespace": "x"}]), "body.inputs.0.name"),
    ],
)
async def test_malformed_openlineage_events_are_422_and_write_nothing(
    api: httpx.AsyncClient, change: Callable[[dict[str, Any]], object], field: str
) -> None:
    event = _event()
    change(event)
    response = await api.post("/api/v1/lineage", json=event)
    assert response.status_code == 422
    assert field in _fields(response)
    edges = await api.get("/api/v1/lineage/edges")
    assert edges.json()["items"] == []


async def test_openlineage_in_refuses_viewers_floods_and_non_json(
    api: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    viewer = {"Authorization": f"Bearer {token(role='viewer')}"}
    assert (await api.post("/api/v1/lineage", json=_event(), headers=viewer)).status_code == 403
    anonymous = await api.post("/api/v1/lineage", json=_event(), headers={"Authorization": ""})
    assert anonymous.status_code == 401
    many = [{"namespace": "s3://lake", "name": f"t/{i}"} for i in range(101)]
    flood = await api.post("/api/v1/lineage", json=_event(inputs=many, outputs=many))
    assert flood.status_code == 422 and "body.outputs" in _fields(flood)
    broken = await api.post(
        "/api/v1/lineage", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert (await api.get("/api/v1/lineage/edges")).json()["items"] == []
    started = await api.post("/api/v1/lineage", json=_event("START"))
    assert started.status_code == 201 and started.json() == {"edges": 0, "new_edges": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"entity": "x" * 1_025}, "query.entity"),
        ({"entity": "orders"}, "query.entity"),
        ({"entity": "raw.orders", "depth": 0}, "query.depth"),
        ({"entity": "raw.orders", "depth": 11}, "query.depth"),
        ({"entity": "raw.orders", "limit": 0}, "query.limit"),
        ({"entity": "raw.orders", "direction": "sideways"}, "query.direction"),
        ({"entity": "raw.orders", "format": "svg"}, "query.format"),
        ({}, "query.entity"),
    ],
)
async def test_malformed_graph_queries_are_422(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/api/v1/lineage/graph", params=params)
    assert response.status_code == 422
    assert field in _fields(response)


# pydot's parser calls pyparsing names that pyparsing deprecates; the project turns warnings
# into errors, so this one is let through, here only.
@pytest.mark.filterwarnings("ignore::pyparsing.PyparsingDeprecationWarning")
async def test_the_graph_as_mermaid_and_dot(api: httpx.AsyncClient) -> None:
    recorded = await api.post(
        "/api/v1/lineage",
        json=_event(
            inputs=[{"namespace": "supabase", "name": "raw.orders"}],
            outputs=[{"namespace": "s3://lake", "name": "curated/orders"}],
        ),
    )
    assert recorded.status_code == 201, recorded.text
    params: dict[str, str | int] = {
        "entity": "s3://lake/curated/orders",
        "direction": "both",
        "depth": 3,
    }
    mermaid = await api.get("/api/v1/lineage/graph", params=params | {"format": "mermaid"})
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert mermaid.text.startswith("flowchart LR")
    dot = await api.get("/api/v1/lineage/graph", params=params | {"format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    (parsed,) = pydot.graph_from_dot_data(dot.text) or []
    assert len(parsed.get_edges()) == 1
    labels = {str(n.get("label")).strip('"') for n in parsed.get_nodes() if n.get("label")}
    assert "s3://lake/curated/orders" in labels


async def test_edges_are_deleted_restored_and_audited_by_admins_of_their_tenant(
    api: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    created = await api.post(
        "/api/v1/lineage/edges", json={"source": "crm.accounts", "target": "silver.accounts"}
    )
    assert created.status_code == 201, created.text
    edge = created.json()
    path = f"/api/v1/lineage/edges/{edge['id']}"

    operator = {"Authorization": f"Bearer {token(role='operator')}"}
    assert (await api.delete(path, headers=operator)).status_code == 403
    assert (await api.post(f"{path}/restore", headers=operator)).status_code == 403
    other = {"Authorization": f"Bearer {token(tenant='globex', role='admin')}"}
    for method, url in [
        ("GET", path),
        ("DELETE", path),
        ("POST", f"{path}/restore"),
        ("GET", f"{path}/audit"),
    ]:
        hidden = await api.request(method, url, headers=other)
        assert hidden.status_code == 404, (method, url)
        assert hidden.headers["content-type"] == "application/problem+json"

    deleted = await api.delete(path, params={"reason": "duplicate of the CRM sync"})
    assert deleted.status_code == 204
    shown = (await api.get(path)).json()
    assert shown["deleted_at"] is not None and shown["delete_reason"] == "duplicate of the CRM sync"
    graph = await api.get("/api/v1/lineage/graph", params={"entity": "silver.accounts"})
    assert graph.json()["upstream"] == []
    restored = await api.post(f"{path}/restore", json={"reason": "it was right"})
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    audit = (await api.get(f"{path}/audit")).json()
    assert [(c["action"], c["reason"]) for c in audit["changes"]] == [
        ("created", None),
        ("deleted", "duplicate of the CRM sync"),
        ("restored", "it was right"),
    ]
    assert (await api.get(f"/api/v1/lineage/edges/{uuid4()}/audit")).status_code == 404
    assert (await api.post("/api/v1/lineage/edges/not-a-uuid/restore")).status_code == 422
    long_reason = await api.delete(path, params={"reason": "x" * 1_001})
    assert long_reason.status_code == 422 and "query.reason" in _fields(long_reason)


async def test_the_dataset_catalogue(api: httpx.AsyncClient, token: Callable[..., str]) -> None:
    for i in range(3):
        response = await api.post(
            "/api/v1/lineage/edges",
            json={"source": f"s3://lake/raw/t{i}", "target": f"silver.t{i}"},
        )
        assert response.status_code == 201
    first = (await api.get("/api/v1/datasets", params={"prefix": "s3://", "limit": 2})).json()
    assert [d["entity"] for d in first["items"]] == ["s3://lake/raw/t0", "s3://lake/raw/t1"]
    rest = await api.get(
        "/api/v1/datasets", params={"prefix": "s3://", "cursor": first["next_cursor"]}
    )
    assert [d["entity"] for d in rest.json()["items"]] == ["s3://lake/raw/t2"]
    assert rest.json()["next_cursor"] is None

    one = await api.get("/api/v1/datasets/supabase://Silver.T1")
    assert one.status_code == 200, one.text
    assert one.json()["entity"] == "silver.t1" and one.json()["upstream_edges"] == 1
    other = {"Authorization": f"Bearer {token(tenant='globex', role='viewer')}"}
    assert (await api.get("/api/v1/datasets/silver.t1", headers=other)).status_code == 404
    assert (await api.get("/api/v1/datasets", headers=other)).json()["items"] == []
    bad = await api.get("/api/v1/datasets/not%20a%20name")
    assert bad.status_code == 422 and "path.entity" in _fields(bad)
    assert (await api.get("/api/v1/datasets", params={"cursor": "%%%"})).status_code == 422


async def test_submissions_with_malformed_entity_names_are_refused_before_anything_runs(
    api: httpx.AsyncClient,
) -> None:
    job = {
        "job_type": "spark_etl",
        "name": "nightly",
        "spec": {
            "text": "x",
            "inputs": {"sources": "raw.a,,raw.b", "target": "orders", "notes": "free text"},
        },
        "code": {"files": [{"path": "a.py", "content": "print(1)\n"}]},
        "created_by": "me",
    }
    refused = await api.post("/api/v1/jobs/run", json=job)
    assert refused.status_code == 422
    assert _fields(refused) == {"body.spec.inputs.sources", "body.spec.inputs.target"}
    report = (await api.post("/api/v1/jobs/validate", json=job)).json()
    assert {(e["code"], e["field"]) for e in report["errors"]} >= {
        ("input.entity", "body.spec.inputs.sources"),
        ("input.entity", "body.spec.inputs.target"),
    }
    on_target = [e["code"] for e in report["errors"] if e["field"] == "body.spec.inputs.target"]
    assert on_target == ["input.entity"]  # once, not also as a malformed URI
    too_long = job | {"spec": {"text": "x", "inputs": {"source": "a." + "b" * 1_030}}}
    assert (await api.post("/api/v1/jobs/run", json=too_long)).status_code == 422
