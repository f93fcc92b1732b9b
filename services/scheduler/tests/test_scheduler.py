"""Scheduler against a real nats-server and Postgres."""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from uuid import uuid4

import nats

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.events import JobSubmitted, RunStarted
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_runtime.streams import provision_streams
from controlroom_scheduler.app import create_app
from controlroom_scheduler.settings import SchedulerSettings


def _submitted(job_type: str = "diagram_export", tenant: str = "t1") -> JobSubmitted:
    return JobSubmitted(
        tenant_id=tenant,
        run_id=uuid4(),
        job=JobRequest(
            job_type=job_type,
            spec=JobSpec(text="export", inputs={"source": "a.b", "target": "c.d"}),
            code=CodeBundle(files=[CodeFile(path="main.py", content="print(1)")]),
            created_by="test",
        ),
    )


def _settings(nats_url: str, database_url: str, **extra: object) -> SchedulerSettings:
    return SchedulerSettings(nats_url=nats_url, database_url=database_url, **extra)  # type: ignore[arg-type]


async def test_submitted_job_is_queued_and_dispatched_to_the_routed_executor_kind(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        event = _submitted()
        await event_tap.publish(event.subject, event.model_dump_json().encode())
        rid = str(event.run_id)
        dispatch = await event_tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == rid
        )
        assert dispatch.data["attempt"] == 1
        assert dispatch.data["job"]["job_type"] == "diagram_export"
        assert dispatch.data["tenant_id"] == "t1"
        assert event_tap.matching(subjects.RUN_QUEUED, lambda d: d["run_id"] == rid)
        assert event_tap.matching(subjects.RUN_DISPATCHED, lambda d: d["run_id"] == rid)


async def test_production_routing_sends_spark_etl_to_k8s(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    settings = _settings(nats_url, database_url, routing_profile="production")
    async with running(create_app(settings)):
        event = _submitted("spark_etl")
        await event_tap.publish(event.subject, event.model_dump_json().encode())
        seen = await event_tap.wait_for(
            subjects.dispatch_subject("k8s"), lambda d: d["run_id"] == str(event.run_id)
        )
        assert seen.data["executor_kind"] == "k8s"


async def test_unrouted_job_type_fails_with_no_route(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        event = _submitted("n8n_only_type")
        await event_tap.publish(event.subject, event.model_dump_json().encode())
        failed = await event_tap.wait_for(
            subjects.RUN_FAILED, lambda d: d["run_id"] == str(event.run_id)
        )
        assert failed.data["failure_reason"] == "no_route"
        assert "n8n_only_type" in failed.data["error"]


async def test_malformed_submission_is_dead_lettered_and_the_consumer_keeps_going(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        await event_tap.publish(subjects.JOB_SUBMITTED, b'{"run_id": "not-a-uuid"}')
        await event_tap.publish(subjects.JOB_SUBMITTED, b"\xff not json")
        dead = await event_tap.wait_for(
            subjects.deadletter_subject("scheduler-submissions"),
            lambda d: "not-a-uuid" in d["payload"],
        )
        assert dead.data["original_subject"] == subjects.JOB_SUBMITTED
        assert "run_id" in dead.data["reason"]
        await event_tap.wait_for(
            subjects.deadletter_subject("scheduler-submissions"),
            lambda d: "not json" in d["payload"],
        )
        good = _submitted()
        await event_tap.publish(good.subject, good.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(good.run_id)
        )


async def test_redelivered_submission_dispatches_once(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        event = _submitted()
        payload = event.model_dump_json().encode()
        # The same event twice, under different Nats-Msg-Ids so JetStream stores both copies:
        # only the inbox can stop the second one.
        await event_tap.publish(event.subject, payload, {"Nats-Msg-Id": "a"})
        await event_tap.publish(event.subject, payload, {"Nats-Msg-Id": "b"})
        marker = _submitted()
        await event_tap.publish(marker.subject, marker.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(marker.run_id)
        )
        rid = str(event.run_id)
        assert (
            len(
                event_tap.matching(
                    subjects.dispatch_subject("docker"), lambda d: d["run_id"] == rid
                )
            )
            == 1
        )


async def test_report_from_a_stale_attempt_is_ignored_and_counted(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    app = create_app(_settings(nats_url, database_url))
    async with running(app):
        event = _submitted()
        await event_tap.publish(event.subject, event.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(event.run_id)
        )
        stale = RunStarted(
            tenant_id="t1",
            run_id=event.run_id,
            attempt=7,
            executor_kind="docker",
            executor_id="x",
            sandboxed=False,
        )
        await event_tap.publish(stale.subject, stale.model_dump_json().encode())
        runtime = app.state.runtime

        async def ignored() -> float | None:
            value: float | None = runtime.metrics.registry.get_sample_value(
                "controlroom_ignored_transitions_total", {"event_type": "run.started"}
            )
            return value

        assert await eventually(ignored, what="the ignored-transition count") == 1.0
        assert json.loads(stale.model_dump_json())["attempt"] == 7


async def test_a_backlog_of_submissions_is_accepted_as_a_batch_each_run_once(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    """Waiting before the scheduler starts, the backlog is handled in one set-based batch:
    routed runs are dispatched, an unrouted one fails, and a run submitted twice under two
    event ids (an upstream retry that minted a new event) is dispatched once."""
    routed = [_submitted() for _ in range(6)]
    unrouted = _submitted("n8n_only_type")
    again = routed[2].model_copy(update={"event_id": uuid4()})
    backlog = [*routed[:3], unrouted, again, *routed[3:]]
    client = await nats.connect(nats_url)
    try:
        await provision_streams(client.jetstream())
    finally:
        await client.close()
    for event in backlog:
        await event_tap.publish(event.subject, event.model_dump_json().encode())
    app = create_app(_settings(nats_url, database_url))
    async with running(app):
        failed = await event_tap.wait_for(
            subjects.RUN_FAILED, lambda d: d["run_id"] == str(unrouted.run_id)
        )
        assert failed.data["failure_reason"] == "no_route"
        dispatch = subjects.dispatch_subject("docker")
        for run_id in (str(e.run_id) for e in routed):
            await event_tap.wait_for(dispatch, partial(_is_run, run_id))
        dispatched = [s.data["run_id"] for s in event_tap.matching(dispatch)]
        assert sorted(dispatched) == sorted(str(e.run_id) for e in routed)
        queued = [s.data["run_id"] for s in event_tap.matching(subjects.RUN_QUEUED)]
        assert sorted(queued) == sorted(str(e.run_id) for e in routed)
        batches = app.state.runtime.metrics.registry.get_sample_value(
            "controlroom_consumer_batch_messages_count", {"consumer": "scheduler-submissions"}
        )
        assert batches is not None and batches < len(backlog)


def _is_run(run_id: str, data: dict[str, Any]) -> bool:
    return bool(data["run_id"] == run_id)
