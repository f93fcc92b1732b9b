"""``make bench``, the whole system: submit -> callback for a trivial job, one at a time
(with where the time goes, step by step, and the CPU each process spends per run), then
sustained runs/s with many in flight."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import nats

from controlroom_contracts import subjects
from controlroom_devstack.bench_report import Row, median, ms, pct, stack_meter
from controlroom_devstack.bench_watch import Timeline
from controlroom_devstack.infra import Postgres
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stack import ServiceStack

SEQUENTIAL_BASELINE = "<= 64 ms (issue start)"
"""The sequential p50 measured when the scheduler issue began; it must not get worse."""
THROUGHPUT_TARGET = ">= 100/s (19.5 at [4]'s start)"
CPU_TARGET = "< 20 ms (~100 at [4]'s start)"
"""The executors issue's targets for trivial jobs on the local backend, 50 in flight."""


def _job(receiver: CallbackReceiver, n: int) -> dict[str, Any]:
    return {
        "job_type": "diagram_export",
        "spec": {"text": f"bench {n}", "inputs": {"source": f"raw.t{n}", "target": f"gold.t{n}"}},
        "code": {"files": [{"path": "main.sh", "content": "echo ok"}]},
        "created_by": "bench",
        "callbacks": {"on_complete": receiver.url("done"), "on_fail": receiver.url("fail")},
    }


async def _one(
    api: httpx.AsyncClient, receiver: CallbackReceiver, n: int
) -> tuple[float, float, str, float]:
    """Submit one run and wait for its callback: (submit s, end to end s, run id, start)."""
    started = time.monotonic()
    response = await api.post("/api/v1/jobs/run", json=_job(receiver, n))
    submitted = time.monotonic()
    response.raise_for_status()
    run_id: str = response.json()["run_id"]
    await receiver.wait_for_run(run_id, timeout=120)
    return submitted - started, time.monotonic() - started, run_id, started


STEPS = (
    ("gateway", None, subjects.JOB_SUBMITTED),
    ("scheduler queues", subjects.JOB_SUBMITTED, subjects.RUN_QUEUED),
    ("scheduler dispatches", subjects.RUN_QUEUED, subjects.RUN_DISPATCHED),
    ("executor claims", subjects.RUN_DISPATCHED, subjects.ATTEMPT_STARTED),
    ("job runs", subjects.ATTEMPT_STARTED, subjects.ATTEMPT_COMPLETED),
    ("scheduler completes", subjects.ATTEMPT_COMPLETED, subjects.RUN_COMPLETED),
    ("notifier calls back", subjects.RUN_COMPLETED, None),
)
"""The critical path of one run: each step from the message seen before it to its own."""


def _steps(timeline: Timeline, receiver: CallbackReceiver, runs: list[tuple[str, float]]) -> str:
    called_back = {
        str(r.json().get("run_id")): r.at for r in receiver.received if r.path == "/done"
    }
    parts = []
    for name, before, after in STEPS:
        gaps = []
        for run_id, started in runs:
            t0 = started if before is None else timeline.at(before, run_id)
            t1 = called_back.get(run_id) if after is None else timeline.at(after, run_id)
            if t0 is not None and t1 is not None:
                gaps.append(t1 - t0)
        if gaps:
            parts.append(f"{name} {ms(median(gaps))}")
    return "submit -> callback, median per step: " + ", ".join(parts) + "."


async def end_to_end(
    stack: ServiceStack, postgres: Postgres, token: str, runs: int, in_flight: int, total: int
) -> tuple[list[Row], list[str]]:
    receiver = CallbackReceiver()
    await receiver.start()
    rows: list[Row] = []
    notes: list[str] = []
    try:
        async with httpx.AsyncClient(
            base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            for n in range(5):  # warm up connections, consumers and caches
                await _one(api, receiver, -n - 1)
            client = await nats.connect(stack.config.nats_url)
            timeline = Timeline(client, f"{subjects.EVENTS_PREFIX}.>")
            await timeline.start()
            submit_times, end_to_end, started = [], [], []
            meter = stack_meter(stack, postgres)
            meter.start()
            t0 = time.monotonic()
            try:
                for n in range(runs):
                    submit, total_s, run_id, at = await _one(api, receiver, n)
                    submit_times.append(submit)
                    end_to_end.append(total_s)
                    started.append((run_id, at))
            finally:
                await client.close()
            meter.stop()
            notes += [
                _steps(timeline, receiver, started),
                f"sequential: {meter.describe_per(runs, 'run')}; over the "
                f"{time.monotonic() - t0:.0f}s: {meter.describe(time.monotonic() - t0)}.",
            ]
            status_times = []
            last = (await api.post("/api/v1/jobs/run", json=_job(receiver, -100))).json()["run_id"]
            for _ in range(runs):
                t0 = time.perf_counter()
                (await api.get(f"/api/v1/runs/{last}")).raise_for_status()
                status_times.append(time.perf_counter() - t0)

            s1 = f"submit -> callback, trivial job, sequential x{runs}"
            rows += [
                Row(s1, "p50 submit->callback", SEQUENTIAL_BASELINE, ms(median(end_to_end))),
                Row(s1, "p99 submit->callback", "not set", ms(pct(end_to_end, 99))),
                Row(s1, "p50 POST /jobs/run", "< 500 ms (PRD NFR-1)", ms(median(submit_times))),
                Row(s1, "p99 POST /jobs/run", "< 500 ms (PRD NFR-1)", ms(pct(submit_times, 99))),
                Row(s1, "p50 GET /runs/{id}", "< 100 ms (PRD NFR-1)", ms(median(status_times))),
                Row(s1, "p99 GET /runs/{id}", "< 100 ms (PRD NFR-1)", ms(pct(status_times, 99))),
            ]

            semaphore = asyncio.Semaphore(in_flight)
            latencies: list[float] = []

            async def bounded(n: int) -> None:
                async with semaphore:
                    latencies.append((await _one(api, receiver, 10_000 + n))[1])

            meter = stack_meter(stack, postgres)
            meter.start()
            t0 = time.perf_counter()
            await asyncio.gather(*(bounded(n) for n in range(total)))
            elapsed = time.perf_counter() - t0
            meter.stop()
            notes.append(
                f"sustained: {meter.describe_per(total, 'run')}; over the {elapsed:.0f}s: "
                f"{meter.describe(elapsed)}."
            )
            per_run = meter.system() / total
            cores = os.cpu_count() or 1
            notes.append(
                f"sustained runs/s is bound by CPU: the system kept "
                f"{meter.system() / elapsed:.2f} of the machine's {cores} cores busy, and at "
                f"{ms(per_run)} of CPU per run {cores} cores allow at most "
                f"{cores / per_run:.0f} runs/s; 100 runs/s needs under {ms(cores / 100)}."
            )
            s2 = f"sustained, {in_flight} in flight, {total} runs"
            rows += [
                Row(s2, "runs/s end to end", THROUGHPUT_TARGET, f"{total / elapsed:.1f}/s"),
                Row(s2, "CPU per run, whole system", CPU_TARGET, ms(meter.system() / total)),
                Row(s2, "p50 submit->callback", "not set", ms(median(latencies))),
                Row(s2, "p99 submit->callback", "not set", ms(pct(latencies, 99))),
            ]
    finally:
        await receiver.stop()
    return rows, notes
