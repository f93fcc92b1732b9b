"""``make bench``, jobs in containers (Podman's or Docker's API): where the time of a container
run goes, trivial container runs/s for one executor replica, and submit -> callback."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import nats

from controlroom_contracts import subjects
from controlroom_devstack.bench_end_to_end import _job, _one
from controlroom_devstack.bench_report import Row, median, ms, pct, stack_meter
from controlroom_devstack.bench_watch import Timeline
from controlroom_devstack.infra import Postgres
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stack import ServiceStack


async def containers(
    stack: ServiceStack, postgres: Postgres, token: str, runs: int, total: int, capacity: int
) -> tuple[list[Row], list[str]]:
    receiver = CallbackReceiver()
    await receiver.start()
    client = await nats.connect(stack.config.nats_url)
    timeline = Timeline(client, "controlroom.>")
    reported_after_exit: dict[str, float] = {}

    def on_completed(data: dict[str, Any], _at: float) -> None:
        # The attempt's finished_at is when the container exited (the executor's clock, the
        # same machine's): how long its files, report and commit took after that.
        ended = datetime.fromisoformat(data["finished_at"]).timestamp()
        reported_after_exit[str(data["run_id"])] = time.time() - ended

    timeline.on(subjects.ATTEMPT_COMPLETED, on_completed)
    await timeline.start()
    rows: list[Row] = []
    notes: list[str] = []
    try:
        async with httpx.AsyncClient(
            base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            for n in range(3):  # warm up: the image's first start reads it from disk
                await _one(api, receiver, -n - 1)
            latencies, ids = [], []
            meter = stack_meter(stack, postgres)
            meter.start()
            for n in range(runs):
                _submit, total_s, run_id, _at = await _one(api, receiver, n)
                latencies.append(total_s)
                ids.append(run_id)
            meter.stop()
            started = [
                t1 - t0
                for rid in ids
                if (t0 := timeline.at(subjects.dispatch_subject("docker"), rid)) is not None
                and (t1 := timeline.at(subjects.ATTEMPT_STARTED, rid)) is not None
            ]
            reported = [reported_after_exit[rid] for rid in ids if rid in reported_after_exit]
            s1 = f"container jobs, sequential x{runs}"
            rows += [
                Row(
                    s1, "p50 dispatch received -> container started", "not set", ms(median(started))
                ),
                Row(
                    s1,
                    "p99 dispatch received -> container started",
                    "not set",
                    ms(pct(started, 99)),
                ),
                Row(s1, "p50 container exited -> terminal event", "not set", ms(median(reported))),
                Row(s1, "p99 container exited -> terminal event", "not set", ms(pct(reported, 99))),
                Row(s1, "p50 submit->callback", "not set", ms(median(latencies))),
                Row(s1, "p99 submit->callback", "not set", ms(pct(latencies, 99))),
            ]
            notes.append(f"container jobs, sequential: {meter.describe_per(runs, 'run')}.")

            semaphore = asyncio.Semaphore(capacity * 2)

            async def bounded(n: int) -> None:
                async with semaphore:
                    await _one(api, receiver, 20_000 + n)

            meter = stack_meter(stack, postgres)
            meter.start()
            t0 = time.perf_counter()
            await asyncio.gather(*(bounded(n) for n in range(total)))
            elapsed = time.perf_counter() - t0
            meter.stop()
            rows.append(
                Row(
                    f"container jobs, {capacity * 2} in flight, {total} runs",
                    "trivial container runs/s, one executor replica",
                    "not set",
                    f"{total / elapsed:.1f}/s",
                )
            )
            notes.append(
                f"container jobs, sustained (capacity {capacity}): "
                f"{meter.describe_per(total, 'run')}."
            )
    finally:
        await client.close()
        await receiver.stop()
    return rows, notes


__all__ = ["containers", "_job"]
