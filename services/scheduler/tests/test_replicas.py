"""Two schedulers on one database and stream, and a scheduler killed mid-stream: every attempt
is dispatched exactly once, no cap is exceeded, nothing is lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from contextlib import AsyncExitStack

import httpx

from controlroom_contracts import subjects
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.infra import free_port
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.waiting import eventually
from controlroom_scheduler.app import create_app

from .conftest import Rig

TENANTS = [f"tenant-{i}" for i in range(5)]


def _dispatch_ids_per_attempt(rig: Rig) -> Counter[tuple[str, int]]:
    """How many distinct DispatchRun messages each (run, attempt) got (a re-publish of the
    same one keeps its id and counts once)."""
    ids: dict[tuple[str, int], set[str]] = {}
    for seen in rig.tap.matching(subjects.dispatch_subject("docker")):
        key = (seen.data["run_id"], seen.data["attempt"])
        ids.setdefault(key, set()).add(seen.data["event_id"])
    return Counter({key: len(found) for key, found in ids.items()})


async def test_two_schedulers_share_500_runs_each_attempt_dispatched_once_and_caps_hold(
    rig: Rig, executor: StandInExecutor
) -> None:
    executor.capacity = 40
    await executor.send()
    runs = [rig.submitted(tenant=TENANTS[i % len(TENANTS)]) for i in range(500)]
    async with AsyncExitStack() as replicas:
        for _ in range(2):
            await replicas.enter_async_context(
                running(create_app(rig.settings(tenant_max_concurrent=10)))
            )
        for event in runs:
            await rig.publish(event)
        done: set[str] = set()

        async def all_completed() -> bool:
            await rig.complete_dispatched(done)
            return len({d.data["run_id"] for d in rig.tap.matching(subjects.RUN_COMPLETED)}) == 500

        await eventually(all_completed, timeout=120, interval=0.1, what="all 500 runs completed")
    per_attempt = _dispatch_ids_per_attempt(rig)
    assert len(per_attempt) == 500 and set(per_attempt.values()) == {1}
    dispatched = Counter(
        d.data["run_id"] for d in rig.decisions() if d.subject == subjects.RUN_DISPATCHED
    )
    assert set(dispatched.values()) == {1}
    for tenant in TENANTS:
        assert rig.most_active(tenant) <= 10, tenant


def _scheduler_process(rig: Rig, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        CONTROLROOM_NATS_URL=rig.nats_url,
        CONTROLROOM_DATABASE_URL=rig.database_url,
        CONTROLROOM_SCHEDULER_PORT=str(port),
        CONTROLROOM_TENANT_MAX_CONCURRENT="1000",
        CONTROLROOM_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "controlroom_scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (
                await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            ).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_scheduler_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    rig: Rig, executor: StandInExecutor
) -> None:
    executor.capacity = 1000
    await executor.send()
    port = free_port()
    process = _scheduler_process(rig, port)
    try:
        await eventually(lambda: _ready(port), timeout=60, what="the scheduler ready")
        runs = [rig.submitted(tenant=TENANTS[i % len(TENANTS)]) for i in range(300)]
        for n, event in enumerate(runs):
            await rig.publish(event)
            if n == 150:
                process.send_signal(signal.SIGKILL)  # mid-stream: some accepted, some not
                process.wait(10)
                process = _scheduler_process(rig, port)
        await eventually(lambda: _ready(port), timeout=60, what="the restarted scheduler ready")

        async def all_queued_and_dispatched() -> bool:
            # A decision the killed process committed but had not yet published is sent by
            # the restarted one's outbox relay, which may come after that run's dispatch.
            queued = {d.data["run_id"] for d in rig.decisions() if d.subject == subjects.RUN_QUEUED}
            return len(_dispatch_ids_per_attempt(rig)) == len(queued) == len(runs)

        await eventually(
            all_queued_and_dispatched, timeout=60, interval=0.1, what="every run queued, dispatched"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    per_attempt = _dispatch_ids_per_attempt(rig)
    assert set(per_attempt) == {(str(e.run_id), 1) for e in runs}
    assert set(per_attempt.values()) == {1}
    queued = Counter(d.data["run_id"] for d in rig.decisions() if d.subject == subjects.RUN_QUEUED)
    assert len(queued) == len(runs) and set(queued.values()) == {1}
