"""Lineage against a real nats-server and Postgres."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted
from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    LineageEdgeIn,
    ListLineageEdges,
)
from controlroom_contracts.rpc import LineageGraph, LineageGraphQuery
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_lineage.app import create_app
from controlroom_lineage.settings import LineageSettings


def _submitted(source: str, target: str, tenant: str = "t1") -> JobSubmitted:
    return JobSubmitted(
        tenant_id=tenant,
        run_id=uuid4(),
        job=JobRequest(
            job_type="spark_etl",
            spec=JobSpec(text="etl", inputs={"source": source, "target": target}),
            code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
            created_by="test",
        ),
    )


def _completed(run_id: UUID, tenant: str = "t1") -> RunCompleted:
    return RunCompleted(
        tenant_id=tenant, run_id=run_id, attempt=1, summary="ok", finished_at=utc_now()
    )


async def _query(tap: EventTap, **params: object) -> LineageGraph:
    query = LineageGraphQuery.model_validate(params)
    reply = await tap.client.request(query.subject, query.model_dump_json().encode(), timeout=5)
    return LineageGraph.model_validate_json(reply.data)


async def test_edge_recorded_when_run_completes_in_either_order(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        first = _submitted("supabase://raw.orders", "supabase://silver.orders")
        await event_tap.publish(first.subject, first.model_dump_json().encode())
        done = _completed(first.run_id)
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        # Completion seen before the submission: the edge still appears.
        second = _submitted("silver.orders", "gold.revenue")
        late = _completed(second.run_id)
        await event_tap.publish(late.subject, late.model_dump_json().encode())
        await event_tap.publish(second.subject, second.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.LINEAGE_RECORDED, lambda d: d["run_id"] == str(first.run_id)
        )
        recorded = await event_tap.wait_for(
            subjects.LINEAGE_RECORDED, lambda d: d["run_id"] == str(second.run_id)
        )
        assert recorded.data["source_entity"] == "silver.orders"

        graph = await _query(event_tap, tenant_id="t1", entity="silver.orders")
        assert [n.entity for n in graph.upstream] == ["raw.orders"]
        assert [n.entity for n in graph.downstream] == ["gold.revenue"]
        assert graph.upstream[0].job_id == first.run_id

        deep = await _query(
            event_tap, tenant_id="t1", entity="gold.revenue", direction="upstream", depth=2
        )
        assert [(n.entity, n.depth) for n in deep.upstream] == [
            ("silver.orders", 1),
            ("raw.orders", 2),
        ]
        assert deep.downstream == []

        other_tenant = await _query(event_tap, tenant_id="t2", entity="silver.orders")
        assert other_tenant.upstream == [] and other_tenant.downstream == []


async def test_failed_or_undeclared_runs_record_no_edge(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        never_completes = _submitted("a.x", "b.x")
        await event_tap.publish(never_completes.subject, never_completes.model_dump_json().encode())
        marker = _submitted("m.src", "m.dst")
        await event_tap.publish(marker.subject, marker.model_dump_json().encode())
        done = _completed(marker.run_id)
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.LINEAGE_RECORDED, lambda d: d["run_id"] == str(marker.run_id)
        )
        assert len(event_tap.matching(subjects.LINEAGE_RECORDED)) == 1


async def test_malformed_query_gets_an_error_reply(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        reply = await event_tap.client.request(
            subjects.LINEAGE_GRAPH_QUERY, b'{"entity": 1}', timeout=5
        )
        assert json.loads(reply.data)["code"] == "invalid"
        assert "invalid request" in json.loads(reply.data)["error"]


def _add(source: str, target: str, tenant: str = "t1", **fields: Any) -> AddLineageEdge:
    edge = LineageEdgeIn.model_validate({"source": source, "target": target} | fields)
    return AddLineageEdge(tenant_id=tenant, edge=edge, created_by="admin-1")


async def test_admins_add_list_and_soft_delete_edges(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        added = await _add_checked(event_tap, _add("supabase://crm.accounts", "silver.accounts"))
        assert added["created"] is True
        edge = added["edge"]
        assert (edge["source"], edge["target"], edge["origin"]) == (
            "crm.accounts",
            "silver.accounts",
            "manual",
        )
        assert edge["run_id"] is None and edge["created_by"] == "admin-1"
        await event_tap.wait_for(subjects.LINEAGE_EDGE_ADDED, lambda d: d["edge_id"] == edge["id"])
        # The same live edge again: the existing one, nothing new recorded.
        again = await _add_checked(event_tap, _add("crm.accounts", "silver.accounts"))
        assert again == {"edge": edge, "created": False}
        # A run-produced edge and a manual one both show in the graph.
        submitted = _submitted("silver.accounts", "gold.churn")
        await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
        done = _completed(submitted.run_id)
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.LINEAGE_RECORDED, lambda d: d["run_id"] == str(submitted.run_id)
        )
        graph = await _query(event_tap, tenant_id="t1", entity="silver.accounts")
        assert [(n.entity, n.job_id) for n in graph.upstream] == [("crm.accounts", None)]
        assert [(n.entity, n.job_id) for n in graph.downstream] == [
            ("gold.churn", submitted.run_id)
        ]

        # Listing pages through the tenant's edges, oldest first, filtered by entity.
        for i in range(3):
            await _add_checked(event_tap, _add(f"raw.part{i}", "silver.accounts"))
        first = await event_tap.ask(
            ListLineageEdges(tenant_id="t1", entity="silver.accounts", limit=3)
        )
        assert first["more"] is True and len(first["items"]) == 3
        last = first["items"][-1]
        rest = await event_tap.ask(
            ListLineageEdges.model_validate(
                {
                    "tenant_id": "t1",
                    "entity": "silver.accounts",
                    "limit": 3,
                    "after": {"created_at": last["created_at"], "id": last["id"]},
                }
            ),
        )
        assert rest["more"] is False and len(rest["items"]) == 2
        ids = [e["id"] for e in first["items"] + rest["items"]]
        assert len(set(ids)) == 5 and ids[0] == edge["id"]
        origins = {e["origin"] for e in first["items"] + rest["items"]}
        assert origins == {"manual", "run"}

        # Another tenant neither sees nor deletes it.
        theirs = await event_tap.ask(ListLineageEdges(tenant_id="t2"))
        assert theirs == {"items": [], "more": False}
        refused = await event_tap.ask(
            DeleteLineageEdge(tenant_id="t2", edge_id=edge["id"], deleted_by="x")
        )
        assert refused["code"] == "not_found"

        # Deleted: out of the graph, still on record, deletion idempotent.
        deleted = await event_tap.ask(
            DeleteLineageEdge(tenant_id="t1", edge_id=edge["id"], deleted_by="admin-1")
        )
        assert deleted == {"id": edge["id"]}
        await event_tap.wait_for(
            subjects.LINEAGE_EDGE_REMOVED, lambda d: d["edge_id"] == edge["id"]
        )
        twice = await event_tap.ask(
            DeleteLineageEdge(tenant_id="t1", edge_id=edge["id"], deleted_by="admin-1")
        )
        assert twice == {"id": edge["id"]}
        assert len(event_tap.matching(subjects.LINEAGE_EDGE_REMOVED)) == 1
        graph = await _query(event_tap, tenant_id="t1", entity="silver.accounts")
        assert "crm.accounts" not in [n.entity for n in graph.upstream]
        history = await event_tap.ask(
            ListLineageEdges(tenant_id="t1", entity="crm.accounts", include_deleted=True),
        )
        assert [e["deleted_at"] is not None for e in history["items"]] == [True]
        # Once deleted, the same edge may be added anew (a new id).
        renewed = await _add_checked(event_tap, _add("crm.accounts", "silver.accounts"))
        assert renewed["created"] is True and renewed["edge"]["id"] != edge["id"]


async def _add_checked(tap: EventTap, request: AddLineageEdge) -> dict[str, Any]:
    answer = await tap.ask(request)
    assert "edge" in answer, answer
    return answer


async def test_invalid_edges_are_refused(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(LineageSettings(nats_url=nats_url, database_url=database_url))):
        loop = await event_tap.ask(_add("a.b", "supabase://a.b"))
        assert loop["code"] == "invalid" and "itself" in loop["error"]
        empty = await event_tap.ask(_add("supabase://", "a.b"))
        assert empty["code"] == "invalid"
        unknown = await event_tap.ask(
            DeleteLineageEdge(tenant_id="t1", edge_id=UUID(int=5), deleted_by="x")
        )
        assert unknown["code"] == "not_found"
        garbage = await event_tap.client.request(subjects.LINEAGE_EDGE_ADD, b"[]", timeout=5)
        assert json.loads(garbage.data)["code"] == "invalid"
        assert event_tap.matching(subjects.LINEAGE_EDGE_ADDED) == []
