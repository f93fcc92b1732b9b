"""The infrastructure goes away mid-stream and comes back: nats-server restarted (its file
store keeps the streams), Postgres stopped for 10 s and for 3 minutes. Writes answer 503
problem+json meanwhile; afterwards everything resumes without restarting a service, nothing
is dead-lettered and nothing is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from controlroom_devstack.chaos import ChaosStack
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

PROBLEM_503 = "503 application/problem+json"
NATS_DOWN_SECONDS = 5.0


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    with chaos_stack("outages") as stack:
        yield stack


WRITES = ("POST /jobs/run", "POST /jobs/run + Idempotency-Key", "POST /runs/{id}/cancel")
READS = ("GET /runs/{id}", "GET /runs")


async def _probe(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """One request's outcome: ``<status> <content-type>``, or the exception's name."""
    try:
        response = await client.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return f"{response.status_code} {response.headers.get('content-type', '').split(';')[0]}"


async def _timed(client: httpx.AsyncClient, body: object, headers: dict[str, str] | None) -> str:
    """A submission's answer and how long it took."""
    started = time.monotonic()
    answer = await _probe(client, "POST", "/api/v1/jobs/run", body, headers)
    return f"{answer.split()[0]} in {time.monotonic() - started:.1f} s"


async def _hold(
    seconds_down: float, client: httpx.AsyncClient, receiver: CallbackReceiver, run_id: str
) -> dict[str, Counter[str]]:
    """Probe writes and reads about once a second for ``seconds_down`` seconds (the
    outage's length is the fault itself, not a wait for something)."""
    answers: dict[str, Counter[str]] = {name: Counter() for name in (*WRITES, *READS)}
    end = time.monotonic() + seconds_down
    while time.monotonic() < end:
        body = job(receiver, "probe")
        key = {"Idempotency-Key": uuid.uuid4().hex}
        for name, outcome in zip(
            (*WRITES, *READS),
            [
                await _probe(client, "POST", "/api/v1/jobs/run", body),
                await _probe(client, "POST", "/api/v1/jobs/run", body, key),
                await _probe(client, "POST", f"/api/v1/runs/{run_id}/cancel"),
                await _probe(client, "GET", f"/api/v1/runs/{run_id}"),
                await _probe(client, "GET", "/api/v1/runs"),
            ],
            strict=True,
        ):
            answers[name][outcome] += 1
        await asyncio.sleep(max(0.0, min(1.0, end - time.monotonic())))
    return answers


@pytest.mark.parametrize(
    "seconds_down",
    [
        pytest.param(10, id="10s"),
        pytest.param(180, id="3min", marks=[pytest.mark.chaos_long, pytest.mark.timeout(900)]),
    ],
)
async def test_postgres_outage_answers_503_then_resumes_without_loss(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results, seconds_down: int
) -> None:
    tenant = f"pg-{seconds_down}"
    tokens = {tenant: token(tenant)}
    runs = 30
    submitter = Submitter(chaos.url("gateway"), tokens, in_flight=4, interval=0.3, retry_every=1)
    ledger = Ledger(chaos, submitter, receiver, tokens)
    before = {r.sequence for r in await dead_letters(chaos)}
    jobs = [(tenant, job(receiver, f"pg {n}", WORKING)) for n in range(runs)]
    async with (
        ledger.following(),
        httpx.AsyncClient(
            base_url=chaos.url("gateway"),
            # Probes as another tenant: whatever they cause stays out of the ledger's runs.
            headers={"Authorization": f"Bearer {token(tenant + '-probe')}"},
            timeout=15,
        ) as client,
    ):
        stream = asyncio.create_task(submitter.run(jobs, deadline=seconds_down + 600))
        await until(lambda: submitter.accepted >= runs // 3, timeout=120, what="a third in")
        some_run = next(s.run_id for s in submitter.submissions if s.run_id)
        assert some_run is not None
        chaos.postgres.stop()
        probes = await _hold(seconds_down, client, receiver, some_run)
        chaos.postgres.start()
        fault_end = datetime.now(UTC)
        await stream
        found = await ledger.settle(timeout=300)
    letters = [r for r in await dead_letters(chaos) if r.sequence not in before]
    refusals = submitter.refusals()
    results.record(
        row(
            f"Postgres stopped for {seconds_down} s mid-stream",
            found,
            seconds(found.seconds_to_recover(fault_end)),
            f"{found.statuses()}; {recovery_notes(found, fault_end)}; answers during the "
            "outage: "
            + "; ".join(f"{name} {dict(answers)}" for name, answers in probes.items())
            + f"; dead letters {len(letters)}; services restarted: none",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": runs}, found.summary()
    assert not letters, [r.data.get("reason") for r in letters]
    assert not chaos.exited(), chaos.exited()
    # Writes are refused with 503 problem+json while the database is away (the client's own
    # retried submissions, with their Idempotency-Key, included), never a 500 or a hang.
    assert {name: set(probes[name]) for name in WRITES} == {
        name: {PROBLEM_503} for name in WRITES
    }, probes
    assert set(refusals) <= {PROBLEM_503}, refusals


async def test_nats_restart_mid_stream_loses_nothing(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results
) -> None:
    tenant = "nats-restart"
    tokens = {tenant: token(tenant)}
    runs = 30
    submitter = Submitter(chaos.url("gateway"), tokens, in_flight=4, interval=0.3)
    ledger = Ledger(chaos, submitter, receiver, tokens)
    before = {r.sequence for r in await dead_letters(chaos)}
    jobs = [(tenant, job(receiver, f"nats {n}", WORKING)) for n in range(runs)]
    async with ledger.following():
        stream = asyncio.create_task(submitter.run(jobs, deadline=600))
        await until(lambda: submitter.accepted >= runs // 3, timeout=120, what="a third in")
        accepted_before = submitter.accepted
        chaos.nats.stop()
        # Submissions while it is down: the gateway records them in Postgres (its outbox
        # publishes later), so they need not wait for the broker.
        async with httpx.AsyncClient(
            base_url=chaos.url("gateway"),
            headers={"Authorization": f"Bearer {token('nats-probe')}"},
            timeout=NATS_DOWN_SECONDS * 3,
        ) as client:
            keyed = {"Idempotency-Key": uuid.uuid4().hex}
            probes = [
                asyncio.create_task(_timed(client, job(receiver, "probe"), headers))
                for headers in (None, keyed)
            ]
            # Down for a few seconds: long enough for every client to notice and reconnect.
            await asyncio.sleep(NATS_DOWN_SECONDS)
            accepted_while_down = submitter.accepted - accepted_before
            chaos.nats.start()
            plain, with_key = [await probe for probe in probes]
        fault_end = datetime.now(UTC)
        await stream
        found = await ledger.settle(timeout=300)
    letters = [r for r in await dead_letters(chaos) if r.sequence not in before]
    results.record(
        row(
            f"nats-server stopped {NATS_DOWN_SECONDS:g} s and restarted mid-stream (file store)",
            found,
            seconds(found.seconds_to_recover(fault_end)),
            f"{found.statuses()}; {recovery_notes(found, fault_end)}; "
            f"{accepted_while_down} runs accepted while it was down; POST /jobs/run sent then "
            f"answered {plain}, with an Idempotency-Key {with_key}; client saw "
            f"{submitter.refusals() or 'no refusals'}; dead letters {len(letters)}; "
            "services restarted: none",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"completed": runs}, found.summary()
    assert not letters, [r.data.get("reason") for r in letters]
    assert not chaos.exited(), chaos.exited()
