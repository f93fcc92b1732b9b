"""``kill -9`` each service in turn during a stream of runs, then restart it: every run
reaches a terminal state exactly once, every callback arrives once, every lineage edge is
recorded, and a retried submission never makes a second run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from controlroom_devstack.chaos import SERVICE_NAMES, ChaosStack
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.submitter import Submitter
from controlroom_devstack.waiting import until

from .conftest import Results, token
from .scenario import (
    WORKING,
    Ledger,
    assert_exactly_once,
    chaos_stack,
    dead_letters,
    job,
    recovery_notes,
    row,
    seconds,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    with chaos_stack("kills") as stack:
        yield stack


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param(30, id="30runs"),
        pytest.param(300, id="300runs", marks=[pytest.mark.chaos_long, pytest.mark.timeout(900)]),
    ],
)
@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results, service: str, runs: int
) -> None:
    tenant = f"kill-{service}-{runs}"
    tokens = {tenant: token(tenant)}
    # The stream lasts ~10 s (30 runs) or ~30 s (300); the service is down for its middle third.
    submitter = Submitter(
        chaos.url("gateway"), tokens, in_flight=8, interval=max(10, runs / 10) / runs
    )
    before = {r.sequence for r in await dead_letters(chaos)}
    jobs = [(tenant, job(receiver, f"{service} {n}", WORKING)) for n in range(runs)]
    ledger = Ledger(chaos, submitter, receiver, tokens)
    async with ledger.following():
        stream = asyncio.create_task(submitter.run(jobs, deadline=600))
        await until(lambda: submitter.accepted >= runs // 3, timeout=120, what="a third in")
        chaos.kill(service)
        if service == "gateway":
            # Nothing is accepted without it: bring it back once clients have noticed.
            await until(lambda: sum(submitter.refusals().values()) >= 3, timeout=60)
        else:
            await until(lambda: submitter.accepted >= 2 * runs // 3, timeout=120)
        fault_end = datetime.now(UTC)
        await chaos.restart(service)
        await stream
        found = await ledger.settle(timeout=300)
    letters = [r for r in await dead_letters(chaos) if r.sequence not in before]
    results.record(
        row(
            f"kill -9 {service} mid-stream ({runs} runs)",
            found,
            seconds(found.seconds_to_recover(fault_end)),
            f"{found.statuses()}; {recovery_notes(found, fault_end)}; client saw "
            f"{submitter.refusals() or 'no refusals'}; dead letters {len(letters)}",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": runs}, found.summary()
    assert not letters, [r.data.get("reason") for r in letters]
    assert not chaos.exited(), chaos.exited()
