"""Scheduler intake, routing, dead letters and fencing, against a real nats-server and Postgres."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import uuid4

import nats
import pytest

from controlroom_contracts import subjects
from controlroom_contracts.events import AttemptStarted
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_runtime.streams import provision_streams
from controlroom_scheduler.app import create_app

from .conftest import Rig


@pytest.mark.usefixtures("executor")
async def test_submitted_job_is_queued_then_dispatched_to_the_routed_executor_kind(
    rig: Rig,
) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted(lane="B", priority=2, timeout_seconds=120)
        await rig.publish(event)
        dispatch = await rig.tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(event.run_id)
        )
        assert dispatch.data["attempt"] == 1 and dispatch.data["timeout_seconds"] == 120
        assert dispatch.data["job"]["job_type"] == "diagram_export"
        assert dispatch.data["tenant_id"] == "t1"
        queued, dispatched = rig.decisions(event.run_id)
        assert (
            queued.subject == subjects.RUN_QUEUED and dispatched.subject == subjects.RUN_DISPATCHED
        )
        assert (queued.data["lane"], queued.data["priority"]) == ("B", 2)
        assert queued.data["max_attempts"] == 3 and queued.data["timeout_seconds"] == 120
        assert [queued.data["sequence"], dispatched.data["sequence"]] == [1, 2]


async def test_production_routing_sends_spark_etl_to_k8s(rig: Rig, nats_url: str) -> None:
    k8s = StandInExecutor(nats_url, kind="k8s", executor_id="k8s-1")
    await k8s.start()
    try:
        async with running(create_app(rig.settings(routing_profile="production"))):
            event = rig.submitted("spark_etl")
            await rig.publish(event)
            seen = await rig.tap.wait_for(
                subjects.dispatch_subject("k8s"), lambda d: d["run_id"] == str(event.run_id)
            )
            assert seen.data["executor_kind"] == "k8s"
    finally:
        await k8s.stop()


async def test_unrouted_job_type_fails_with_no_route(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted("n8n_only_type")
        await rig.publish(event)
        failed = await rig.decided(subjects.RUN_FAILED, event.run_id)
        assert failed.data["failure_reason"] == "no_route"
        assert "n8n_only_type" in failed.data["error"]


@pytest.mark.usefixtures("executor")
async def test_malformed_submission_is_dead_lettered_and_the_consumer_keeps_going(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        await rig.tap.publish(subjects.JOB_SUBMITTED, b'{"run_id": "not-a-uuid"}')
        await rig.tap.publish(subjects.JOB_SUBMITTED, b"\xff not json")
        dead = await rig.tap.wait_for(
            subjects.deadletter_subject("scheduler-submissions"),
            lambda d: "not-a-uuid" in d["payload"],
        )
        assert dead.data["original_subject"] == subjects.JOB_SUBMITTED
        assert "run_id" in dead.data["reason"]
        await rig.tap.wait_for(
            subjects.deadletter_subject("scheduler-submissions"),
            lambda d: "not json" in d["payload"],
        )
        good = rig.submitted()
        await rig.publish(good)
        await rig.decided(subjects.RUN_DISPATCHED, good.run_id)


async def test_malformed_attempt_report_is_dead_lettered(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        await rig.tap.publish(subjects.ATTEMPT_FAILED, b'{"tenant_id": "t1", "attempt": "x"}')
        dead = await rig.tap.wait_for(subjects.deadletter_subject("scheduler-run-inputs"))
        assert "AttemptFailed" in dead.data["reason"]


@pytest.mark.usefixtures("executor")
async def test_redelivered_submission_dispatches_once(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted()
        payload = event.model_dump_json().encode()
        # The same event twice, under different Nats-Msg-Ids so JetStream stores both copies:
        # only the inbox can stop the second one.
        await rig.tap.publish(event.subject, payload, {"Nats-Msg-Id": "a"})
        await rig.tap.publish(event.subject, payload, {"Nats-Msg-Id": "b"})
        marker = rig.submitted()
        await rig.publish(marker)
        await rig.decided(subjects.RUN_DISPATCHED, marker.run_id)
        dispatch = subjects.dispatch_subject("docker")
        rid = str(event.run_id)
        assert len(rig.tap.matching(dispatch, lambda d: d["run_id"] == rid)) == 1


@pytest.mark.usefixtures("executor")
async def test_report_from_a_stale_attempt_changes_nothing_and_is_counted(rig: Rig) -> None:
    app = create_app(rig.settings())
    async with running(app):
        event = rig.submitted()
        await rig.publish(event)
        await rig.decided(subjects.RUN_DISPATCHED, event.run_id)
        stale = AttemptStarted(
            tenant_id="t1",
            run_id=event.run_id,
            attempt=7,
            executor_kind="docker",
            executor_id="x",
            sandboxed=False,
        )
        await rig.publish(stale)
        registry = app.state.runtime.metrics.registry

        async def ignored() -> float | None:
            value: float | None = registry.get_sample_value(
                "controlroom_ignored_transitions_total", {"event_type": "started"}
            )
            return value

        assert await eventually(ignored, what="the ignored-transition count") == 1.0
        assert [s.subject for s in rig.decisions(event.run_id)] == [
            subjects.RUN_QUEUED,
            subjects.RUN_DISPATCHED,
        ]


@pytest.mark.usefixtures("executor")
async def test_another_tenants_report_about_a_run_changes_nothing(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        event = rig.submitted()
        await rig.publish(event)
        await rig.decided(subjects.RUN_DISPATCHED, event.run_id)
        forged = AttemptStarted(
            tenant_id="evil",
            run_id=event.run_id,
            attempt=1,
            executor_kind="docker",
            executor_id="x",
            sandboxed=False,
        )
        await rig.publish(forged)
        genuine = AttemptStarted(
            tenant_id="t1",
            run_id=event.run_id,
            attempt=1,
            executor_kind="docker",
            executor_id="e1",
            sandboxed=False,
        )
        await rig.publish(genuine)
        started = await rig.decided(subjects.RUN_STARTED, event.run_id)
        assert started.data["executor_id"] == "e1"


@pytest.mark.usefixtures("executor")
async def test_a_backlog_of_submissions_is_accepted_as_a_batch_each_run_once(rig: Rig) -> None:
    """Waiting before the scheduler starts, the backlog is handled in one set-based batch:
    routed runs are dispatched, an unrouted one fails, and a run submitted twice under two
    event ids (an upstream retry that minted a new event) is dispatched once."""
    routed = [rig.submitted() for _ in range(6)]
    unrouted = rig.submitted("n8n_only_type")
    again = routed[2].model_copy(update={"event_id": uuid4()})
    backlog = [*routed[:3], unrouted, again, *routed[3:]]
    client = await nats.connect(rig.nats_url)
    try:
        await provision_streams(client.jetstream())
    finally:
        await client.close()
    for event in backlog:
        await rig.publish(event)
    app = create_app(rig.settings())
    async with running(app):
        failed = await rig.decided(subjects.RUN_FAILED, unrouted.run_id)
        assert failed.data["failure_reason"] == "no_route"
        dispatch = subjects.dispatch_subject("docker")
        for event in routed:
            await rig.tap.wait_for(dispatch, partial(_is_run, str(event.run_id)))
        dispatched = [
            s.data["run_id"] for s in rig.tap.matching(subjects.dispatch_subject("docker"))
        ]
        assert sorted(dispatched) == sorted(str(e.run_id) for e in routed)
        queued = [s.data["run_id"] for s in rig.tap.matching(subjects.RUN_QUEUED)]
        assert sorted(queued) == sorted(str(e.run_id) for e in routed)
        batches = app.state.runtime.metrics.registry.get_sample_value(
            "controlroom_consumer_batch_messages_count", {"consumer": "scheduler-submissions"}
        )
        assert batches is not None and batches < len(backlog)


def _is_run(run_id: str, data: dict[str, Any]) -> bool:
    return bool(data["run_id"] == run_id)
