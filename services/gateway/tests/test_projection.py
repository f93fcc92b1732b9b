"""The set-based read-model projection against a real Postgres.

A batch is applied with a fixed number of statements; it must leave the read model exactly as
applying its events one at a time would. Both ways are run here on the same story, and the
story's expected outcome is checked as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from fastapi import FastAPI

from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason, JobRequest, JobSpec
from controlroom_contracts.base import Message, utc_now
from controlroom_contracts.events import (
    ArtifactDeleted,
    ArtifactStored,
    JobSubmitted,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunProgress,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
)
from controlroom_gateway.read_model import history_store, projection, store
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

T0 = utc_now()
IMAGE = "localhost/controlroom-python:1"


def _at(seconds: int) -> Any:
    return T0 + timedelta(seconds=seconds)


def _submitted(run_id: UUID) -> JobSubmitted:
    return JobSubmitted(
        tenant_id="acme",
        run_id=run_id,
        occurred_at=T0,
        job=JobRequest(
            job_type="spark_etl",
            spec=JobSpec(text="copy", inputs={"source": "raw.a", "target": "gold.a"}),
            code=CodeBundle(files=[CodeFile(path="c.py", content="")]),
            created_by="ci",
        ),
    )


def _story(r: Sequence[UUID], artifact: UUID) -> tuple[list[Message], list[Message]]:
    """(what exists before, the batch) for runs ``r[0..3]``; interleaved across runs."""
    before: list[Message] = [_submitted(run_id) for run_id in r[1:]]
    common = {"tenant_id": "acme", "executor_kind": "docker"}
    started = {**common, "executor_id": "e1", "sandboxed": True}
    r0: list[Message] = [
        _submitted(r[0]),
        RunQueued(**common, run_id=r[0], job_type="spark_etl", sequence=1, occurred_at=_at(1)),
        RunDispatched(**common, run_id=r[0], attempt=1, sequence=2, occurred_at=_at(2)),
        RunStarted(**started, run_id=r[0], attempt=1, sequence=3, occurred_at=_at(3), image=IMAGE),
        RunProgress(tenant_id="acme", run_id=r[0], attempt=1, percent=50.0),
        RunCompleted(
            tenant_id="acme", run_id=r[0], attempt=1, sequence=4, summary="ok", finished_at=_at(5)
        ),
        # Another tenant's decision about this run changes nothing.
        RunFailed(
            tenant_id="evil",
            run_id=r[0],
            attempt=9,
            sequence=5,
            failure_reason=FailureReason.lost,
            error="x",
            finished_at=_at(6),
        ),
    ]
    r1: list[Message] = [
        RunQueued(**common, run_id=r[1], job_type="spark_etl", sequence=1, occurred_at=_at(1)),
        RunDispatched(**common, run_id=r[1], attempt=1, sequence=2, occurred_at=_at(2)),
        RunStarted(
            **started, run_id=r[1], attempt=1, sequence=3, occurred_at=_at(3), image="old:1"
        ),
        RunRetryScheduled(
            tenant_id="acme",
            run_id=r[1],
            sequence=4,
            failed_attempt=1,
            next_attempt=2,
            retry_at=_at(5),
            reason=FailureReason.lost,
            error="executor vanished",
            finished_at=_at(4),
        ),
        RunDispatched(**common, run_id=r[1], attempt=2, sequence=5, occurred_at=_at(5)),
        # The same decision again (a replica's re-publish): already reflected, not history.
        RunDispatched(**common, run_id=r[1], attempt=2, sequence=5, occurred_at=_at(5)),
        RunStarted(**started, run_id=r[1], attempt=2, sequence=6, occurred_at=_at(6), image=IMAGE),
        RunCompleted(
            tenant_id="acme", run_id=r[1], attempt=2, sequence=7, summary="ok", finished_at=_at(7)
        ),
    ]
    r2: list[Message] = [
        RunCompleted(
            tenant_id="acme", run_id=r[2], attempt=1, sequence=4, summary="ok", finished_at=_at(5)
        ),
        # Late (an older decision): the run stays completed and learns when and where it
        # started.
        RunStarted(
            **{**started, "sandboxed": False},
            run_id=r[2],
            attempt=1,
            sequence=3,
            occurred_at=_at(3),
            image=IMAGE,
        ),
    ]
    r3: list[Message] = [
        ArtifactStored(
            tenant_id="acme",
            run_id=r[3],
            attempt=1,
            artifact_id=artifact,
            path="output/a.csv",
            size_bytes=3,
            checksum="sha256:00",
            content_type="text/csv",
            storage_key=f"k/{artifact}",
        ),
        ArtifactDeleted(
            tenant_id="acme",
            run_id=r[3],
            artifact_id=artifact,
            path="output/a.csv",
            deleted_by="admin",
        ),
        RunQueued(**common, run_id=uuid4(), job_type="spark_etl"),  # a run nobody knows
    ]
    lanes = [r0, r1, r2, r3]
    batch: list[Message] = [
        lane[i] for i in range(max(map(len, lanes))) for lane in lanes if i < len(lane)
    ]
    return before, batch


async def _apply(runtime: ServiceRuntime, events: Sequence[Message]) -> None:
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await projection.project(uow, events)


_PER_COPY = {"artifact_id", "storage_key"}


async def _outcome(runtime: ServiceRuntime, runs: Sequence[UUID]) -> list[dict[str, Any]]:
    """Each run's view and history, without what differs between two copies of the story."""
    outcome = []
    async with runtime.sessions() as session:
        for run_id in runs:
            view = await store.get_run(session, run_id, "acme")
            assert view is not None
            history = await history_store.list_run_events(
                session, "acme", run_id, after=0, limit=100
            )
            outcome.append(
                {
                    "run": view.model_dump(exclude={"run_id"}),
                    "history": [
                        (e.event_type, {k: v for k, v in e.data.items() if k not in _PER_COPY})
                        for e in history
                    ],
                }
            )
    return outcome


async def test_a_batch_projects_exactly_as_its_events_one_at_a_time(gateway: FastAPI) -> None:
    runtime: ServiceRuntime = gateway.state.runtime
    outcomes = []
    for one_at_a_time in (False, True):
        runs = [uuid4() for _ in range(4)]
        before, batch = _story(runs, artifact=uuid4())
        await _apply(runtime, before)
        if one_at_a_time:
            for event in batch:
                await _apply(runtime, [event])
        else:
            await _apply(runtime, batch)
        outcomes.append(await _outcome(runtime, runs))
    batched, single = outcomes
    assert batched == single

    r0, r1, r2, r3 = batched
    assert r0["run"]["status"] == "completed" and r0["run"]["sandboxed"] is True
    assert r0["run"]["image"] == IMAGE
    assert [t for t, _ in r0["history"]] == [
        "queued",
        "dispatched",
        "started",
        "progress",
        "completed",
    ]
    assert r1["run"]["status"] == "completed" and r1["run"]["attempt"] == 2
    assert r1["run"]["image"] == IMAGE  # its latest attempt's
    assert r1["run"]["failure_reason"] is None and r1["run"]["error"] is None
    assert [t for t, _ in r1["history"]] == [
        "queued",
        "dispatched",
        "started",
        "retry_scheduled",
        "dispatched",
        "started",
        "completed",
    ]
    first, second = r1["run"]["attempts"]
    assert (first["attempt"], first["status"], first["failure_reason"]) == (1, "failed", "lost")
    assert first["error"] == "executor vanished" and first["executor_id"] == "e1"
    assert (second["attempt"], second["status"]) == (2, "completed")
    assert r2["run"]["status"] == "completed"
    assert r2["run"]["started_at"] is not None and r2["run"]["sandboxed"] is False
    assert r2["run"]["image"] == IMAGE  # a late start still says where the run ran
    assert [t for t, _ in r2["history"]] == ["completed", "started"]
    assert r3["run"]["artifacts"] == []
    assert [t for t, _ in r3["history"]] == ["artifact", "artifact_deleted"]
