"""Queue and admission against a real nats-server and Postgres: caps, fairness, explanations."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from controlroom_contracts import subjects
from controlroom_contracts.rpc import LimitsQuery, QueueQuery
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_scheduler.app import create_app

from .conftest import Rig


async def test_a_burst_never_exceeds_its_tenants_cap_and_another_tenant_starts_at_once(
    rig: Rig, executor: StandInExecutor
) -> None:
    executor.capacity = 500
    async with running(create_app(rig.settings(tenant_max_concurrent=10))):
        burst = [rig.submitted(tenant="busy") for _ in range(200)]
        for event in burst:
            await rig.publish(event)
        await rig.decided(subjects.RUN_DISPATCHED, burst[0].run_id)
        other = rig.submitted(tenant="quiet")
        await rig.publish(other)
        # While the busy tenant waits behind its cap, the other's run goes at once.
        await rig.decided(subjects.RUN_DISPATCHED, other.run_id, timeout=5)
        assert (
            len(rig.tap.matching(subjects.RUN_DISPATCHED, lambda d: d["tenant_id"] == "busy")) == 10
        )

        done: set[str] = set()

        async def all_completed() -> bool:
            await rig.complete_dispatched(done)
            finished = rig.tap.matching(subjects.RUN_COMPLETED, lambda d: d["tenant_id"] == "busy")
            return len(finished) == len(burst)

        await eventually(all_completed, timeout=60, interval=0.1, what="the whole burst")
        assert rig.most_active("busy") == 10


@pytest.mark.usefixtures("executor")
async def test_queued_runs_are_explained_and_limits_show_what_is_used(rig: Rig) -> None:
    settings = rig.settings(
        tenant_max_concurrent=2,
        lanes={"A": {}, "B": {"max_concurrent_runs": 1}},
    )
    async with running(create_app(settings)):
        first = [rig.submitted(tenant="t1", lane="A") for _ in range(2)]
        for event in first:
            await rig.publish(event)
        for event in first:
            await rig.decided(subjects.RUN_DISPATCHED, event.run_id)
        waiting = [rig.submitted(tenant="t1", lane="A", priority=p) for p in (5, 1)]
        for event in waiting:
            await rig.publish(event)
        for event in waiting:
            await rig.decided(subjects.RUN_QUEUED, event.run_id)
        answer = await rig.tap.ask(QueueQuery(tenant_id="t1", run_ids=[e.run_id for e in waiting]))
        entries = {e["run_id"]: e for e in answer["entries"]}
        low, high = (entries[str(e.run_id)] for e in waiting)
        assert low["reason"] == high["reason"] == "tenant_cap_reached"
        assert (high["position"], low["position"]) == (1, 2)  # priority 1 goes first
        # Another tenant never sees these runs.
        foreign = await rig.tap.ask(QueueQuery(tenant_id="t2", run_ids=[waiting[0].run_id]))
        assert foreign["entries"] == []

        limits = await rig.tap.ask(LimitsQuery(tenant_id="t1"))
        assert (limits["max_concurrent_runs"], limits["running"], limits["queued"]) == (2, 2, 2)
        assert limits["lanes"]["A"] == {"max_concurrent_runs": None, "running": 2, "queued": 2}
        assert limits["lanes"]["B"] == {"max_concurrent_runs": 1, "running": 0, "queued": 0}


@pytest.mark.usefixtures("executor")
async def test_a_lane_cap_holds_a_lane_back_but_not_the_others(rig: Rig) -> None:
    settings = rig.settings(lanes={"A": {}, "B": {"max_concurrent_runs": 1}})
    async with running(create_app(settings)):
        b_runs = [rig.submitted(lane="B") for _ in range(3)]
        for event in b_runs:
            await rig.publish(event)
        a_run = rig.submitted(lane="A")
        await rig.publish(a_run)
        await rig.decided(subjects.RUN_DISPATCHED, a_run.run_id)
        await rig.decided(subjects.RUN_DISPATCHED, b_runs[0].run_id)
        answer = await rig.tap.ask(
            QueueQuery(tenant_id="t1", run_ids=[e.run_id for e in b_runs[1:]])
        )
        assert {e["reason"] for e in answer["entries"]} == {"lane_cap_reached"}
        assert len(rig.tap.matching(subjects.RUN_DISPATCHED, lambda d: d["tenant_id"] == "t1")) == 2


async def test_without_a_live_executor_a_run_waits_with_the_reason_no_executor(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted()
        await rig.publish(event)
        await rig.decided(subjects.RUN_QUEUED, event.run_id)

        async def explained() -> str | None:
            answer = await rig.tap.ask(QueueQuery(tenant_id="t1", run_ids=[event.run_id]))
            reason: str | None = answer["entries"][0]["reason"] if answer["entries"] else None
            return reason

        assert await eventually(explained, what="a queue reason") == "no_executor"
        assert not rig.tap.matching(subjects.RUN_DISPATCHED)


async def test_when_executors_are_full_runs_wait_for_capacity(
    rig: Rig, executor: StandInExecutor
) -> None:
    executor.capacity = 1
    await executor.send()
    async with running(create_app(rig.settings())):
        runs = [rig.submitted() for _ in range(2)]
        for event in runs:
            await rig.publish(event)
        await rig.decided(subjects.RUN_DISPATCHED, runs[0].run_id)
        # The second submission may still be on its way to the scheduler when the
        # first is dispatched: wait for it to be queued before asking why.
        await rig.decided(subjects.RUN_QUEUED, runs[1].run_id)

        async def explained() -> str | None:
            answer = await rig.tap.ask(QueueQuery(tenant_id="t1", run_ids=[runs[1].run_id]))
            reason: str | None = answer["entries"][0]["reason"] if answer["entries"] else None
            return reason

        assert await eventually(explained, what="a queue reason") == "no_executor_capacity"
        await rig.complete_dispatched(set())
        await rig.decided(subjects.RUN_DISPATCHED, runs[1].run_id)


async def test_a_tenant_with_a_long_queue_takes_turns_with_another(
    rig: Rig, executor: StandInExecutor
) -> None:
    """With executor capacity the only limit, two tenants' dispatches alternate."""
    executor.capacity = 0
    await executor.send()
    async with running(create_app(rig.settings(tenant_max_concurrent=100))):
        mine = [rig.submitted(tenant="a") for _ in range(20)]
        theirs = [rig.submitted(tenant="b") for _ in range(5)]
        for event in [*mine, *theirs]:
            await rig.publish(event)
        for event in [*mine, *theirs]:
            await rig.decided(subjects.RUN_QUEUED, event.run_id)
        executor.capacity = 10
        await executor.send()
        await eventually(lambda: _count(rig, subjects.RUN_DISPATCHED, 10), what="ten dispatches")
        order = [s.data["tenant_id"] for s in rig.tap.matching(subjects.RUN_DISPATCHED)]
        assert order.count("b") == 5 and order.count("a") == 5


async def _count(rig: Rig, subject: str, n: int) -> bool:
    return len(rig.tap.matching(subject)) >= n


async def test_malformed_or_oversized_queue_questions_get_an_invalid_reply(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        for payload in (b"{not json", b'{"tenant_id": "t1", "run_ids": ["x"]}'):
            reply = await rig.tap.client.request(subjects.QUEUE_QUERY, payload, timeout=5)
            assert b'"code":"invalid"' in reply.data
        ids = [str(uuid4()) for _ in range(501)]
        too_many = json.dumps({"tenant_id": "t1", "run_ids": ids})
        reply = await rig.tap.client.request(subjects.QUEUE_QUERY, too_many.encode(), timeout=5)
        assert b'"code":"invalid"' in reply.data
        reply = await rig.tap.client.request(subjects.LIMITS_QUERY, b"{}", timeout=5)
        assert b'"code":"invalid"' in reply.data


@pytest.mark.usefixtures("executor")
async def test_runs_waiting_for_a_missing_kind_do_not_hold_back_a_live_kinds_runs(
    rig: Rig,
) -> None:
    settings = rig.settings(tenant_max_concurrent=2, routes={"spark_etl": "k8s"})
    async with running(create_app(settings)):  # only a docker executor is live
        for _ in range(3):
            await rig.publish(rig.submitted("spark_etl"))
        docker = rig.submitted("diagram_export")
        await rig.publish(docker)
        await rig.decided(subjects.RUN_DISPATCHED, docker.run_id)
        assert len(rig.tap.matching(subjects.RUN_DISPATCHED)) == 1
