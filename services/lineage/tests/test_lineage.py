"""Lineage against a real nats-server and Postgres: runs become edges, admins curate them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason, JobRequest, JobSpec
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import (
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
)
from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    GetDataset,
    GetLineageEdge,
    GetLineageEdgeAudit,
    LineageEdgeIn,
    ListDatasets,
    ListLineageEdges,
    RecordOpenLineage,
    RestoreLineageEdge,
)
from controlroom_contracts.rpc import LineageGraph, LineageGraphQuery
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import until
from controlroom_lineage.app import create_app
from controlroom_lineage.settings import LineageSettings
from controlroom_runtime import db


def _submitted(
    source: str | None = None,
    target: str | None = None,
    tenant: str = "t1",
    name: str | None = None,
    **inputs: str,
) -> JobSubmitted:
    declared = {k: v for k, v in {"source": source, "target": target}.items() if v is not None}
    return JobSubmitted(
        tenant_id=tenant,
        run_id=uuid4(),
        job=JobRequest(
            job_type="spark_etl",
            name=name,
            spec=JobSpec(text="etl", inputs=declared | inputs),
            code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
            created_by="test",
        ),
    )


def _completed(run_id: UUID, tenant: str = "t1") -> RunCompleted:
    return RunCompleted(
        tenant_id=tenant, run_id=run_id, attempt=1, summary="ok", finished_at=utc_now()
    )


async def _run(tap: EventTap, submitted: JobSubmitted, *, completed_first: bool = False) -> Any:
    """Submit and complete a run on the stream; the LineageRecorded it produced."""
    done = _completed(submitted.run_id, submitted.tenant_id)
    order = [done, submitted] if completed_first else [submitted, done]
    for event in order:
        await tap.publish(event.subject, event.model_dump_json().encode())
    run = str(submitted.run_id)
    return (await tap.wait_for(subjects.LINEAGE_RECORDED, lambda d: d["run_id"] == run)).data


async def _query(tap: EventTap, **params: object) -> LineageGraph:
    query = LineageGraphQuery.model_validate({"tenant_id": "t1"} | params)
    reply = await tap.client.request(query.subject, query.model_dump_json().encode(), timeout=5)
    return LineageGraph.model_validate_json(reply.data)


def _add(source: str, target: str, tenant: str = "t1", **fields: Any) -> AddLineageEdge:
    edge = LineageEdgeIn.model_validate({"source": source, "target": target} | fields)
    return AddLineageEdge(tenant_id=tenant, edge=edge, created_by="admin-1")


async def _edge(tap: EventTap, source: str, target: str, tenant: str = "t1") -> dict[str, Any]:
    answer = await tap.ask(_add(source, target, tenant))
    assert "edge" in answer, answer
    edge: dict[str, Any] = answer["edge"]
    return edge


@pytest.fixture
async def lineage(nats_url: str, database_url: str) -> AsyncIterator[None]:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        yield


@pytest.mark.usefixtures("lineage")
async def test_edges_recorded_when_run_completes_in_either_order(event_tap: EventTap) -> None:
    first = _submitted("supabase://raw.orders", "supabase://silver.orders")
    recorded = await _run(event_tap, first)
    assert recorded["sources"] == ["raw.orders"] and recorded["targets"] == ["silver.orders"]
    assert (recorded["edges"], recorded["new_edges"]) == (1, 1)
    second = _submitted("Silver.Orders", "gold.revenue")
    await _run(event_tap, second, completed_first=True)

    graph = await _query(event_tap, entity="silver.orders")
    assert [n.entity for n in graph.upstream] == ["raw.orders"]
    assert [n.entity for n in graph.downstream] == ["gold.revenue"]
    assert graph.upstream[0].job_id == first.run_id and graph.upstream[0].job == "spark_etl"
    assert {(n.entity, n.depth) for n in graph.nodes} == {
        ("silver.orders", 0),
        ("raw.orders", 1),
        ("gold.revenue", 1),
    }
    assert {(e.source, e.target, e.run_count) for e in graph.edges} == {
        ("raw.orders", "silver.orders", 1),
        ("silver.orders", "gold.revenue", 1),
    }

    deep = await _query(event_tap, entity="gold.revenue", direction="upstream", depth=2)
    assert [(n.entity, n.depth) for n in deep.upstream] == [
        ("silver.orders", 1),
        ("raw.orders", 2),
    ]
    assert deep.downstream == []
    assert (await _query(event_tap, entity="gold.revenue", direction="upstream")).upstream[
        -1
    ].entity == "silver.orders"

    other_tenant = await _query(event_tap, tenant_id="t2", entity="silver.orders")
    assert other_tenant.upstream == [] and other_tenant.edges == []


@pytest.mark.usefixtures("lineage")
async def test_a_hundred_runs_of_one_job_are_one_edge_with_a_hundred_runs(
    event_tap: EventTap,
) -> None:
    runs = [_submitted("raw.clicks", "silver.clicks", name="sessionize") for _ in range(100)]
    for run in runs:
        await _run(event_tap, run)
    # The same completion delivered again records nothing more.
    await event_tap.publish(runs[0].subject, runs[0].model_dump_json().encode())
    again = _completed(runs[0].run_id)
    await event_tap.publish(again.subject, again.model_dump_json().encode())
    other_job = await _run(event_tap, _submitted("raw.clicks", "silver.clicks"))
    assert other_job["new_edges"] == 1  # another job moving the same data is another edge

    listed = await event_tap.ask(ListLineageEdges(tenant_id="t1", entity="raw.clicks"))
    by_job = {e["job"]: e for e in listed["items"]}
    assert set(by_job) == {"sessionize", "spark_etl"}
    assert by_job["sessionize"]["run_count"] == 100
    assert by_job["sessionize"]["latest_run_id"] == str(runs[-1].run_id)
    assert by_job["sessionize"]["origin"] == "run"
    assert sum(1 for s in event_tap.matching(subjects.LINEAGE_RECORDED)) == 101


@pytest.mark.usefixtures("lineage")
async def test_every_declared_input_feeds_every_declared_output(event_tap: EventTap) -> None:
    run = _submitted(
        source="raw.a",
        sources="raw.b, s3://Lake//landing/c/, raw.a",
        target="gold.x",
        targets="gold.y",
    )
    recorded = await _run(event_tap, run)
    assert recorded["sources"] == ["raw.a", "raw.b", "s3://lake/landing/c"]
    assert recorded["targets"] == ["gold.x", "gold.y"]
    assert (recorded["edges"], recorded["new_edges"]) == (6, 6)
    graph = await _query(event_tap, entity="gold.x", direction="upstream")
    assert sorted(n.entity for n in graph.upstream) == ["raw.a", "raw.b", "s3://lake/landing/c"]

    produced = await event_tap.ask(GetDataset(tenant_id="t1", entity="gold.y"))
    assert produced["last_produced"]["run_id"] == str(run.run_id)
    assert produced["last_consumed"] is None and produced["upstream_edges"] == 3
    consumed = await event_tap.ask(GetDataset(tenant_id="t1", entity="s3://lake/landing/c"))
    assert consumed["last_consumed"]["job"] == "spark_etl" and consumed["downstream_edges"] == 2


@pytest.mark.usefixtures("lineage")
async def test_a_submission_with_a_malformed_entity_is_dead_lettered_with_the_reason(
    event_tap: EventTap,
) -> None:
    bad = _submitted("raw.a", "not a table")
    await event_tap.publish(bad.subject, bad.model_dump_json().encode())
    letter = await event_tap.wait_for(
        subjects.deadletter_subject("lineage"), lambda d: str(bad.run_id) in json.dumps(d)
    )
    assert "spec.inputs.target" in letter.data["reason"]
    # The consumer goes on with the next run.
    await _run(event_tap, _submitted("raw.a", "gold.b"))


@pytest.mark.usefixtures("lineage")
async def test_failed_or_undeclared_runs_record_no_edge(event_tap: EventTap) -> None:
    never_completes = _submitted("a.x", "b.x")
    await event_tap.publish(never_completes.subject, never_completes.model_dump_json().encode())
    only_source = _submitted("a.y")
    await event_tap.publish(only_source.subject, only_source.model_dump_json().encode())
    done = _completed(only_source.run_id)
    await event_tap.publish(done.subject, done.model_dump_json().encode())
    await _run(event_tap, _submitted("m.src", "m.dst"))
    assert len(event_tap.matching(subjects.LINEAGE_RECORDED)) == 1
    assert (await _query(event_tap, entity="a.x")).edges == []


@pytest.mark.usefixtures("lineage")
async def test_malformed_queries_get_an_error_reply(event_tap: EventTap) -> None:
    for body in (b'{"entity": 1}', b'{"tenant_id": "t1", "entity": "no"}', b"[]"):
        reply = await event_tap.client.request(subjects.LINEAGE_GRAPH_QUERY, body, timeout=5)
        assert json.loads(reply.data)["code"] == "invalid"


@pytest.mark.usefixtures("lineage")
async def test_cycles_end_and_the_node_limit_truncates(event_tap: EventTap) -> None:
    for source, target in [("c.a", "c.b"), ("c.b", "c.c"), ("c.c", "c.a"), ("c.c", "c.d")]:
        await _edge(event_tap, source, target)
    graph = await _query(event_tap, entity="c.a", depth=10)
    assert {(n.entity, n.depth) for n in graph.nodes} == {
        ("c.a", 0),
        ("c.b", 1),  # downstream; 2 hops upstream
        ("c.c", 1),  # upstream; 2 hops downstream
        ("c.d", 3),  # downstream only: a -> b -> c -> d
    }
    assert len(graph.edges) == 4 and not graph.truncated  # each edge once, from either side
    assert [(n.entity, n.depth) for n in graph.upstream] == [("c.c", 1), ("c.b", 2)]
    assert [(n.entity, n.depth) for n in graph.downstream] == [
        ("c.b", 1),
        ("c.c", 2),
        ("c.d", 3),
    ]
    shallow = await _query(event_tap, entity="c.a", direction="downstream", depth=2)
    assert [n.entity for n in shallow.downstream] == ["c.b", "c.c"]

    # A hub with 30 consumers, limited to 10 nodes.
    for i in range(30):
        await _edge(event_tap, "hub.customers", f"mart.m{i:02d}")
    cut = await _query(event_tap, entity="hub.customers", direction="downstream", limit=10)
    assert cut.truncated and len(cut.nodes) == 10
    assert {e.target for e in cut.edges} == {n.entity for n in cut.nodes} - {"hub.customers"}
    whole = await _query(event_tap, entity="hub.customers", direction="downstream", limit=100)
    assert not whole.truncated and len(whole.nodes) == 31


@pytest.mark.usefixtures("lineage")
async def test_soft_delete_restore_and_audit(event_tap: EventTap, database_url: str) -> None:
    edge = await _edge(event_tap, "supabase://crm.accounts", "silver.accounts")
    assert (edge["source"], edge["origin"], edge["job"]) == ("crm.accounts", "manual", "manual")
    await event_tap.wait_for(subjects.LINEAGE_EDGE_ADDED, lambda d: d["edge_id"] == edge["id"])
    again = await event_tap.ask(_add("crm.accounts", "silver.accounts"))
    assert again == {"edge": edge, "created": False}

    deleted = await event_tap.ask(
        DeleteLineageEdge(tenant_id="t1", edge_id=edge["id"], deleted_by="admin-2", reason="wrong")
    )
    assert deleted == {"id": edge["id"]}
    twice = await event_tap.ask(
        DeleteLineageEdge(tenant_id="t1", edge_id=edge["id"], deleted_by="admin-2")
    )
    assert twice == {"id": edge["id"]}
    await event_tap.wait_for(subjects.LINEAGE_EDGE_REMOVED, lambda d: d["edge_id"] == edge["id"])
    assert len(event_tap.matching(subjects.LINEAGE_EDGE_REMOVED)) == 1
    assert (await _query(event_tap, entity="silver.accounts")).upstream == []
    shown = await _query(event_tap, entity="silver.accounts", include_deleted=True)
    assert [e.deleted for e in shown.edges] == [True]
    kept = await event_tap.ask(GetLineageEdge(tenant_id="t1", edge_id=edge["id"]))
    assert (kept["deleted_by"], kept["delete_reason"]) == ("admin-2", "wrong")

    restored = await event_tap.ask(
        RestoreLineageEdge(tenant_id="t1", edge_id=edge["id"], restored_by="admin-3", reason="ok")
    )
    assert restored["id"] == edge["id"] and restored["deleted_at"] is None
    await event_tap.wait_for(subjects.LINEAGE_EDGE_RESTORED, lambda d: d["edge_id"] == edge["id"])
    assert [n.entity for n in (await _query(event_tap, entity="silver.accounts")).upstream] == [
        "crm.accounts"
    ]
    audit = await event_tap.ask(GetLineageEdgeAudit(tenant_id="t1", edge_id=edge["id"]))
    assert [(c["action"], c["actor"], c["reason"]) for c in audit["changes"]] == [
        ("created", "admin-1", None),
        ("deleted", "admin-2", "wrong"),
        ("restored", "admin-3", "ok"),
    ]

    # Another tenant neither sees nor changes it.
    for request in (
        GetLineageEdge(tenant_id="t2", edge_id=edge["id"]),
        GetLineageEdgeAudit(tenant_id="t2", edge_id=edge["id"]),
        DeleteLineageEdge(tenant_id="t2", edge_id=edge["id"], deleted_by="x"),
        RestoreLineageEdge(tenant_id="t2", edge_id=edge["id"], restored_by="x"),
    ):
        assert (await event_tap.ask(request))["code"] == "not_found"
    assert (await event_tap.ask(ListLineageEdges(tenant_id="t2"))) == {"items": [], "more": False}

    # Append-only in the database itself: no DELETE gets through, whoever sends it.
    engine = db.create_engine(database_url)
    try:
        for table in ("edges", "edge_runs", "edge_audit", "datasets"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(sa.text(f"DELETE FROM lineage.{table}"))  # noqa: S608
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("lineage")
async def test_openlineage_events_record_edges_under_their_job(event_tap: EventTap) -> None:
    def event(event_type: str, run_id: UUID, outputs: list[str]) -> RecordOpenLineage:
        return RecordOpenLineage(
            tenant_id="t1",
            event_type=event_type,
            event_time=utc_now(),
            run_id=run_id,
            job="airflow/orders_daily",
            producer="https://example.com/producer",
            recorded_by="operator-1",
            inputs=["raw.orders", "raw.customers"],
            outputs=outputs,
        )

    run_id = uuid4()
    started = await event_tap.ask(event("START", run_id, ["gold.orders"]))
    assert started == {"edges": 0, "new_edges": 0}
    done = await event_tap.ask(event("COMPLETE", run_id, ["gold.orders"]))
    assert done == {"edges": 2, "new_edges": 2}
    assert (await event_tap.ask(event("COMPLETE", run_id, ["gold.orders"]))) == {
        "edges": 0,
        "new_edges": 0,
    }
    listed = await event_tap.ask(ListLineageEdges(tenant_id="t1", entity="gold.orders"))
    assert {(e["job"], e["origin"], e["run_count"]) for e in listed["items"]} == {
        ("airflow/orders_daily", "openlineage", 1)
    }
    audit = await event_tap.ask(
        GetLineageEdgeAudit(tenant_id="t1", edge_id=listed["items"][0]["id"])
    )
    assert audit["changes"][0]["actor"].startswith("operator-1 (openlineage")


@pytest.mark.usefixtures("lineage")
async def test_the_dataset_catalogue_pages_by_name_and_prefix(event_tap: EventTap) -> None:
    for i in range(5):
        await _edge(event_tap, f"s3://lake/raw/t{i}", f"silver.t{i}")
    first = await event_tap.ask(ListDatasets(tenant_id="t1", prefix="s3://lake/", limit=3))
    assert [d["entity"] for d in first["items"]] == [f"s3://lake/raw/t{i}" for i in range(3)]
    assert first["more"] is True
    rest = await event_tap.ask(
        ListDatasets(tenant_id="t1", prefix="s3://lake/", limit=3, after="s3://lake/raw/t2")
    )
    assert [d["entity"] for d in rest["items"]] == ["s3://lake/raw/t3", "s3://lake/raw/t4"]
    assert rest["more"] is False
    everything = await event_tap.ask(ListDatasets(tenant_id="t1", limit=200))
    assert len(everything["items"]) == 10
    assert (await event_tap.ask(ListDatasets(tenant_id="t2"))) == {"items": [], "more": False}
    missing = await event_tap.ask(GetDataset(tenant_id="t2", entity="silver.t0"))
    assert missing["code"] == "not_found"


@pytest.mark.usefixtures("lineage")
async def test_invalid_edges_are_refused(event_tap: EventTap) -> None:
    loop = await event_tap.ask(_add("a.b", "supabase://a.b"))
    assert loop["code"] == "invalid" and "itself" in loop["error"]
    unknown = await event_tap.ask(
        DeleteLineageEdge(tenant_id="t1", edge_id=UUID(int=5), deleted_by="x")
    )
    assert unknown["code"] == "not_found"
    for body in (b"[]", b'{"tenant_id": "t1", "edge": {"source": "x", "target": "a.b"}}'):
        garbage = await event_tap.client.request(subjects.LINEAGE_EDGE_ADD, body, timeout=5)
        assert json.loads(garbage.data)["code"] == "invalid"
    assert event_tap.matching(subjects.LINEAGE_EDGE_ADDED) == []


async def test_our_runs_are_announced_to_an_openlineage_endpoint(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    receiver = CallbackReceiver(fail_first=1)  # the first POST fails: delivery retries it
    await receiver.start()
    settings = LineageSettings(
        nats_url=nats_url,
        database_url=database_url,
        openlineage_url=f"http://127.0.0.1:{receiver.port}/marquez/",
        openlineage_api_key="ol-key",
    )
    try:
        async with running(create_app(settings)):
            ok = _submitted("raw.orders", "gold.orders", name="orders_daily")
            bad = _submitted("raw.orders", "gold.broken")
            gone = _submitted("raw.orders", "gold.never")
            for run in (ok, bad, gone):
                await event_tap.publish(run.subject, run.model_dump_json().encode())
            for run in (ok, bad):
                for attempt in (1, 2):  # a retried run starts once
                    started = RunStarted(
                        tenant_id="t1",
                        run_id=run.run_id,
                        attempt=attempt,
                        executor_kind="docker",
                        executor_id="e1",
                        sandboxed=True,
                    )
                    await event_tap.publish(started.subject, started.model_dump_json().encode())
            ended: list[RunCompleted | RunFailed | RunCancelled] = [
                _completed(ok.run_id),
                RunFailed(
                    tenant_id="t1",
                    run_id=bad.run_id,
                    attempt=2,
                    failure_reason=FailureReason.exit_code,
                    exit_code=3,
                    error="boom",
                    finished_at=utc_now(),
                ),
                RunCancelled(
                    tenant_id="t1", run_id=gone.run_id, attempt=0, reason="x", finished_at=utc_now()
                ),
            ]
            for event in ended:
                await event_tap.publish(event.subject, event.model_dump_json().encode())

            def announced(run: JobSubmitted) -> list[str]:
                return [
                    r.json()["eventType"]
                    for r in receiver.received[1:]  # the failed first POST is retried
                    if r.json()["run"]["runId"] == str(run.run_id)
                ]

            await until(
                lambda: (
                    (announced(ok), announced(bad), announced(gone))
                    == (["START", "COMPLETE"], ["START", "FAIL"], ["ABORT"])
                ),
                what="every run announced once, in order",
            )
            complete = next(r for r in receiver.received if r.json()["eventType"] == "COMPLETE")
            assert complete.path == "/marquez/api/v1/lineage"
            assert complete.headers["authorization"] == "Bearer ol-key"
            body = complete.json()
            assert body["job"] == {"namespace": "controlroom/t1", "name": "orders_daily"}
            assert body["inputs"] == [{"namespace": "supabase", "name": "raw.orders"}]
            assert body["outputs"] == [{"namespace": "supabase", "name": "gold.orders"}]
            assert body["schemaURL"].startswith("https://openlineage.io/spec/")
    finally:
        await receiver.stop()


@pytest.mark.usefixtures("lineage")
async def test_a_run_recording_a_deleted_edge_adds_its_run_but_leaves_it_deleted(
    event_tap: EventTap,
) -> None:
    await _run(event_tap, _submitted("raw.x", "gold.x", name="copy_x"))
    (edge,) = (await event_tap.ask(ListLineageEdges(tenant_id="t1", entity="raw.x")))["items"]
    await event_tap.ask(
        DeleteLineageEdge(tenant_id="t1", edge_id=edge["id"], deleted_by="admin", reason="no")
    )
    again = await _run(event_tap, _submitted("raw.x", "gold.x", name="copy_x"))
    assert (again["edges"], again["new_edges"]) == (1, 0)
    kept = await event_tap.ask(GetLineageEdge(tenant_id="t1", edge_id=edge["id"]))
    assert kept["run_count"] == 2 and kept["deleted_at"] is not None  # the admin's call stands
    assert (await _query(event_tap, entity="raw.x")).downstream == []
