"""Lineage against a real nats-server and Postgres."""

from __future__ import annotations

from uuid import UUID, uuid4

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted
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
        assert b"invalid query" in reply.data
