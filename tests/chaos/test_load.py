"""Load: 100 runs at once (PRD NFR-3), and a burst across ten tenants with caps in force:
no errors, no run lost or stuck, and no tenant ever over its cap, judged from the
scheduler's own decisions on the event stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from controlroom_contracts import subjects
from controlroom_devstack.caps import peak_in_use
from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.ledger import TERMINAL
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stream_reader import Stored, read_stream
from controlroom_devstack.submitter import Submitter

from .conftest import Results, token
from .scenario import Ledger, assert_exactly_once, chaos_stack, dead_letters, job, row

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

TENANT_CAP = 5
NFR3_TENANT = "nfr3"
NFR3_RUNS = 100


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    with chaos_stack(
        "load",
        CONTROLROOM_EXECUTOR_CAPACITY=str(NFR3_RUNS),
        CONTROLROOM_TENANT_MAX_CONCURRENT=str(TENANT_CAP),
        CONTROLROOM_TENANT_LIMITS=json.dumps({NFR3_TENANT: NFR3_RUNS}),
        # A thousand runs make a lot of INFO lines; the two cores are better spent on runs.
        CONTROLROOM_LOG_LEVEL="WARNING",
    ) as stack:
        yield stack


async def _decisions(chaos: ChaosStack, tenants: set[str]) -> list[Stored]:
    wanted = (subjects.RUN_DISPATCHED, subjects.RUN_STARTED, subjects.RUN_RETRY_SCHEDULED)
    stored = await read_stream(chaos.nats_url, (*wanted, *TERMINAL))
    return [m for m in stored if m.data.get("tenant_id") in tenants]


async def test_a_hundred_runs_at_once_all_complete(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results
) -> None:
    tokens = {NFR3_TENANT: token(NFR3_TENANT)}
    submitter = Submitter(chaos.url("gateway"), tokens, in_flight=NFR3_RUNS)
    # Long enough that all hundred are running together once dispatched.
    jobs = [(NFR3_TENANT, job(receiver, f"nfr3 {n}", "sleep 15; echo ok")) for n in range(100)]
    ledger = Ledger(chaos, submitter, receiver, tokens)
    async with ledger.following():
        await submitter.run(jobs, deadline=120)
        found = await ledger.settle(timeout=300)
    decisions = await _decisions(chaos, {NFR3_TENANT})
    running = peak_in_use(decisions, subjects.RUN_STARTED).get(NFR3_TENANT, 0)
    letters = await dead_letters(chaos)
    results.record(
        row(
            "100 concurrent runs (PRD NFR-3)",
            found,
            "-",
            f"{found.statuses()}; at most {running} running at once (executor capacity and "
            f"tenant cap {NFR3_RUNS}); client errors {submitter.refusals() or 'none'}; dead "
            f"letters {len(letters)}",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": NFR3_RUNS}, found.summary()
    assert not submitter.refusals()
    assert not letters, [r.data.get("reason") for r in letters]


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param(200, id="200runs"),
        pytest.param(1000, id="1000runs", marks=[pytest.mark.chaos_long, pytest.mark.timeout(900)]),
    ],
)
async def test_a_burst_across_ten_tenants_keeps_every_cap(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results, runs: int
) -> None:
    tenants = [f"burst{runs}-{n}" for n in range(10)]
    tokens = {tenant: token(tenant) for tenant in tenants}
    submitter = Submitter(chaos.url("gateway"), tokens, in_flight=50)
    jobs = [(tenants[n % 10], job(receiver, f"burst {n}")) for n in range(runs)]
    ledger = Ledger(chaos, submitter, receiver, tokens)
    async with ledger.following():
        await submitter.run(jobs, deadline=600)
        found = await ledger.settle(timeout=600)
    decisions = await _decisions(chaos, set(tenants))
    peaks = peak_in_use(decisions, subjects.RUN_DISPATCHED)
    over = {tenant: peak for tenant, peak in peaks.items() if peak > TENANT_CAP}
    letters = await dead_letters(chaos)
    results.record(
        row(
            f"{runs}-run burst across 10 tenants, cap {TENANT_CAP} each",
            found,
            "-",
            f"{found.statuses()}; most dispatched or running at once per tenant "
            f"{max(peaks.values(), default=0)} (cap {TENANT_CAP}; over it: "
            f"{over or 'never'}); client errors {submitter.refusals() or 'none'}; dead "
            f"letters {len(letters)}",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": runs}, found.summary()
    assert not over, peaks
    assert not submitter.refusals()
    assert not letters, [r.data.get("reason") for r in letters]
