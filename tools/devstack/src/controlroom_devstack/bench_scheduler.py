"""The scheduler alone, driven through NATS: dispatch rate from a backlog, and fairness.

Each scenario gets a stack of its own (a nats-server and a database of its own, and the
scheduler as its only service), so nothing another scenario queued weighs on it, and no real
executor competes: the job type is routed to an executor kind (``bench``) that only a
``StandInExecutor`` serves, so nothing is ever executed. The bench publishes submissions and
executors' reports straight to JetStream, as the gateway and an executor would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import nats
from nats.aio.client import Client

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import Message, utc_now
from controlroom_contracts.events import AttemptCompleted, JobSubmitted
from controlroom_devstack.bench_report import Row, median, ms, pct, stack_meter
from controlroom_devstack.bench_watch import Counter, Timeline
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.infra import NatsServer, Postgres
from controlroom_devstack.stack import SERVICES, ServiceStack, StackConfig

BENCH_KIND = "bench"
JOB_TYPE = "kb_catalog"
"""Routed to ``BENCH_KIND`` in these stacks only."""


@contextmanager
def scheduler_stack(
    base: Path, postgres: Postgres, name: str, env: dict[str, str]
) -> Iterator[ServiceStack]:
    """nats-server and the scheduler (at nice 0), on a database of their own in ``postgres``."""
    postgres.create_database(name)
    server = NatsServer(base / f"nats-{name}", log_file=base / f"nats-{name}.log")
    stack = ServiceStack(
        StackConfig(
            nats_url=server.url,
            database_url=postgres.url(name),
            jwt_secret="bench-secret-bench-secret-bench-secret",
            logs_dir=base / f"logs-{name}",
            workdir=base / f"work-{name}",
            extra_env={
                "CONTROLROOM_ROUTES": json.dumps({JOB_TYPE: BENCH_KIND}),
                "CONTROLROOM_LOG_LEVEL": "WARNING",
                **env,
            },
            # No API here to give way to: a lower priority would only hand the scheduler's
            # time to whatever else runs on the machine.
            background_nice=0,
        ),
        services=tuple(s for s in SERVICES if s.name == "scheduler"),
    )
    server.start()
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        server.stop()


def submission(tenant: str, n: int) -> JobSubmitted:
    return JobSubmitted(
        tenant_id=tenant,
        run_id=uuid4(),
        job=JobRequest(
            job_type=JOB_TYPE,
            spec=JobSpec(text=f"bench {n}"),
            code=CodeBundle(files=[CodeFile(path="main.sh", content="echo ok")]),
            created_by="bench",
        ),
    )


def completion(tenant: str, run_id: object, attempt: int = 1) -> AttemptCompleted:
    return AttemptCompleted(
        tenant_id=tenant,
        run_id=UUID(str(run_id)),
        attempt=attempt,
        summary="ok",
        finished_at=utc_now(),
    )


async def publish_all(client: Client, messages: Sequence[Message]) -> None:
    """Publish to JetStream pipelined: every message written before any ack is awaited."""
    js = client.jetstream(publish_async_max_pending=4000)
    acks = [
        await js.publish_async(
            m.subject,
            m.model_dump_json().encode(),
            headers={"Nats-Msg-Id": str(m.event_id)},
            wait_stall=30,
        )
        for m in messages
    ]
    await asyncio.gather(*acks)


async def publish(client: Client, message: Message) -> None:
    await client.jetstream().publish(
        message.subject,
        message.model_dump_json().encode(),
        headers={"Nats-Msg-Id": str(message.event_id)},
    )


def _passes(decided: list[float], commanded: list[float], gap: float = 0.025) -> list[Pass]:
    """The admission passes, told apart in the dispatches' arrival times.

    A pass commits, then publishes each run's ``RunDispatched`` and then each one's
    ``DispatchRun``; the next pass starts once that publish is done. So a pause of more than
    ``gap`` between two ``RunDispatched`` starts a new pass, and a pass's publishing ends
    with the ``DispatchRun`` that brings their count level with the ``RunDispatched``."""
    passes: list[Pass] = []
    for i, t in enumerate(decided):
        if i == 0 or t - decided[i - 1] > gap:
            passes.append(Pass(t, t, 0))
        passes[-1].runs += 1
    total = 0
    for p in passes:
        total += p.runs
        p.published = commanded[total - 1] if total <= len(commanded) else p.started
    return passes


@dataclass
class Pass:
    started: float
    """Its first RunDispatched seen."""
    published: float
    """Its last DispatchRun seen."""
    runs: int


async def dispatch_rate(
    stack: ServiceStack, postgres: Postgres, runs: int, tenants: int
) -> tuple[list[Row], list[str]]:
    """A backlog of ``runs`` queued runs across ``tenants``, then capacity appears."""
    client = await nats.connect(stack.config.nats_url)
    stand_in = StandInExecutor(
        stack.config.nats_url, executor_id="bench-stand-in", kind=BENCH_KIND, capacity=10**7
    )
    try:
        queued = Counter(client, subjects.RUN_QUEUED)
        dispatched = Counter(client, subjects.RUN_DISPATCHED)
        commands = Counter(client, subjects.dispatch_subject(BENCH_KIND))
        for counter in (queued, dispatched, commands):
            await counter.start()
        backlog = [submission(f"bench-t{n % tenants}", n) for n in range(runs)]
        t0 = time.monotonic()
        await publish_all(client, backlog)
        published = time.monotonic() - t0
        all_queued = await queued.reached(runs, timeout=600) - t0
        # Nothing was dispatched yet: no executor of the kind has been heard of.
        early = dispatched.count
        meter = stack_meter(stack, postgres)
        meter.start()
        t0 = time.monotonic()
        await stand_in.start()
        last = await dispatched.reached(runs, timeout=600)
        drain = last - t0
        meter.stop()
        await commands.reached(runs, timeout=60)
    finally:
        await stand_in.stop()
        await client.close()
    scheduler_cpu = meter.spent["scheduler"]
    passes = _passes(dispatched.times, commands.times)
    first = dispatched.times[0] - t0
    title = f"dispatch from a backlog of {runs:,} queued runs, {tenants} tenants, caps not binding"
    rows = [
        Row(
            title, "dispatches/s (capacity appears -> last)", ">= 2,000/s", f"{runs / drain:,.0f}/s"
        ),
        Row(title, "drain time", "-", f"{drain:.2f} s"),
        Row(title, "scheduler CPU per dispatch", "-", f"{scheduler_cpu / runs * 1e6:.0f} µs"),
    ]
    publishing = [p.published - p.started for p in passes]
    between = [b.started - a.published for a, b in zip(passes, passes[1:], strict=False)]
    notes = [
        f"dispatch: {runs:,} submissions published in {published:.1f}s, all queued after "
        f"{all_queued:.1f}s ({runs / all_queued:,.0f}/s; {early} dispatched before capacity "
        f"appeared). Drain of {drain:.2f}s: CPU {meter.describe(drain)}. {len(passes)} "
        f"admission passes of median {median([float(p.runs) for p in passes]):.0f} runs; a pass "
        f"publishes for {ms(median(publishing))} (median) after its commit (each run's "
        "RunDispatched and DispatchRun, every ack awaited) and the next one's first dispatch "
        f"comes {ms(median(between)) if between else '-'} after that (its locking, reading, "
        f"planning, writing and commit); the first came {ms(first)} after capacity appeared.",
    ]
    return rows, notes


@dataclass
class _Churn:
    on: bool = False
    a_dispatched: int = 0


async def fairness(
    stack: ServiceStack, postgres: Postgres, a_runs: int, b_runs: int
) -> tuple[list[Row], list[str]]:
    """Tenant A: ``a_runs`` queued behind its cap; B submits one run at a time."""
    client = await nats.connect(stack.config.nats_url)
    stand_in = StandInExecutor(
        stack.config.nats_url, executor_id="bench-stand-in", kind=BENCH_KIND, capacity=40
    )
    timeline = Timeline(client, f"{subjects.EVENTS_PREFIX}.run.>")
    tasks: set[asyncio.Task[None]] = set()
    churn = _Churn()

    def on_dispatched(data: dict[str, object], _at: float) -> None:
        # While A churns, the bench plays its executor: each A run dispatched completes at
        # once and A submits another, so A keeps its cap full and ~a_runs waiting.
        if data["tenant_id"] != "fair-a" or not churn.on:
            return
        churn.a_dispatched += 1
        task = asyncio.create_task(
            publish_all(client, [completion("fair-a", data["run_id"]), submission("fair-a", -1)])
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    timeline.on(subjects.RUN_DISPATCHED, on_dispatched)
    try:
        await timeline.start()
        await stand_in.start()
        a = [submission("fair-a", n) for n in range(a_runs)]
        await publish_all(client, a)
        for event in a:
            await timeline.wait(subjects.RUN_QUEUED, event.run_id, timeout=120)
        a_active = sum(timeline.at(subjects.RUN_DISPATCHED, e.run_id) is not None for e in a)

        async def measure() -> tuple[list[float], list[float]]:
            to_queued, to_dispatched = [], []
            for n in range(b_runs):
                b = submission("fair-b", n)
                t0 = time.monotonic()
                await publish(client, b)
                seen = await timeline.wait(subjects.RUN_DISPATCHED, b.run_id, timeout=30)
                to_dispatched.append(seen - t0)
                to_queued.append((timeline.at(subjects.RUN_QUEUED, b.run_id) or seen) - t0)
                # B never reaches its own cap: its run ends as soon as it is dispatched.
                await publish(client, completion("fair-b", b.run_id))
                await asyncio.sleep(0.02)  # pacing: B's submissions land at any phase
            return to_queued, to_dispatched

        idle = stack_meter(stack, postgres)
        idle.start()
        t0 = time.monotonic()
        still_q, still_d = await measure()
        idle.stop()
        idle_s = time.monotonic() - t0
        churn.on = True
        # Set A going: complete what it has active now; each completion dispatches another.
        await publish_all(
            client,
            [
                completion("fair-a", e.run_id)
                for e in a
                if timeline.at(subjects.RUN_DISPATCHED, e.run_id)
            ],
        )
        busy = stack_meter(stack, postgres)
        busy.start()
        t0 = time.monotonic()
        churn_q, churn_d = await measure()
        busy.stop()
        churn_s = time.monotonic() - t0
        churn.on = False
        await asyncio.gather(*tasks)
    finally:
        await stand_in.stop()
        await client.close()
    title = f"fairness: A has {a_runs:,} runs behind its cap (10), B submits x{b_runs}"
    a_rate = churn.a_dispatched / churn_s
    rows = [
        Row(title, "p50 B submit->dispatched, A idle", "-", ms(median(still_d))),
        Row(title, "p99 B submit->dispatched, A idle", "< 50 ms", ms(pct(still_d, 99))),
        Row(title, "p50 B submit->dispatched, A churning", "-", ms(median(churn_d))),
        Row(title, "p99 B submit->dispatched, A churning", "< 50 ms", ms(pct(churn_d, 99))),
    ]
    notes = [
        f"fairness: A had {a_active} runs dispatched and {a_runs - a_active} waiting. "
        "'A idle': A's dispatched runs never end; 'A churning': every A run completes as soon "
        f"as it is dispatched and A submits another ({a_rate:.0f} A runs/s dispatched meanwhile). "
        f"B submit->queued p50 {ms(median(still_q))} / {ms(median(churn_q))} (idle/churning), "
        f"queued->dispatched p50 {ms(_median_gap(still_q, still_d))} / "
        f"{ms(_median_gap(churn_q, churn_d))}. CPU, A idle: {idle.describe(idle_s)}; "
        f"A churning: {busy.describe(churn_s)}.",
    ]
    return rows, notes


def _median_gap(earlier: list[float], later: list[float]) -> float:
    return median([b - a for a, b in zip(earlier, later, strict=True)])
