"""Soak: steady load for ten minutes with every service's resident memory sampled every few
seconds. The bound: no service's fitted RSS line rises more than ``GROWTH_BOUND_MIB`` over
the second half of the soak (the first half is warm-up: caches, pools and the allocator's
arenas fill)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.memory import MemorySampler
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.submitter import Submitter

from .conftest import Results, token
from .scenario import Ledger, assert_exactly_once, chaos_stack, dead_letters, job, row

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

RATE = 4.0
"""Runs submitted per second, spread over four tenants."""
GROWTH_BOUND_MIB = 8.0
SAMPLE_SECONDS = 5.0


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    with chaos_stack("soak", CONTROLROOM_LOG_LEVEL="WARNING") as stack:
        yield stack


def _details(sampler: MemorySampler, seconds: float) -> str:
    lines = [
        f"Resident memory (VmRSS, MiB) over a {seconds / 60:g}-minute soak at {RATE:g} runs/s, "
        f"sampled every {SAMPLE_SECONDS:g} s. Bound: the line fitted to the second half rises "
        f"less than {GROWTH_BOUND_MIB:g} MiB over it, for every service.",
        "",
        "| process | first minute | last minute | peak | slope, whole soak (MiB/min) | "
        "rise over the second half (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for g in sampler.growth():
        lines.append(
            f"| {g.name} | {g.first_minute:.1f} | {g.last_minute:.1f} | {g.peak:.1f} | "
            f"{g.slope_all:+.2f} | {g.growth_second_half:+.1f} |"
        )
    return "\n".join(lines)


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(
            float(os.environ.get("CONTROLROOM_SOAK_SECONDS", "600")),
            id="10min",
            marks=[pytest.mark.chaos_long, pytest.mark.timeout(1800)],
        )
    ],
)
async def test_steady_load_keeps_every_service_memory_bounded(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results, seconds: float
) -> None:
    tenants = [f"soak-{n}" for n in range(4)]
    tokens = {tenant: token(tenant) for tenant in tenants}
    runs = int(seconds * RATE)
    submitter = Submitter(chaos.url("gateway"), tokens, in_flight=16, interval=1 / RATE)
    jobs = [(tenants[n % 4], job(receiver, f"soak {n}")) for n in range(runs)]
    sampler = MemorySampler(chaos.pids, interval=SAMPLE_SECONDS)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    ledger = Ledger(chaos, submitter, receiver, tokens)
    try:
        await submitter.run(jobs, deadline=seconds + 600)
    finally:
        stop.set()
        await sampling
    found = await ledger.settle(timeout=600)
    letters = await dead_letters(chaos)
    growth = {g.name: g for g in sampler.growth()}
    services = {name: g for name, g in growth.items() if name != "nats-server"}
    worst = max(services.values(), key=lambda g: g.growth_second_half)
    results.record(
        row(
            f"soak: {seconds / 60:g} min at {RATE:g} runs/s, memory sampled",
            found,
            "-",
            f"{found.statuses()}; bound: no service's RSS rises more than "
            f"{GROWTH_BOUND_MIB:g} MiB over the second half; largest rise {worst.name} "
            f"{worst.growth_second_half:+.1f} MiB ({worst.first_minute:.0f} -> "
            f"{worst.last_minute:.0f} MiB first to last minute); restarts "
            f"{chaos.exited() or 'none'}; dead letters {len(letters)}",
        ),
        details=_details(sampler, seconds),
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": runs}, found.summary()
    assert not letters, [r.data.get("reason") for r in letters]
    assert not chaos.exited(), chaos.exited()
    over = {
        n: round(g.growth_second_half, 1)
        for n, g in services.items()
        if g.growth_second_half >= GROWTH_BOUND_MIB
    }
    assert not over, over
