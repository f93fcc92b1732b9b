"""Duplicate and out-of-order delivery of every event type has no second effect.

Runs that complete, fail, are retried and are cancelled (with pushed events, a Continue
callback, a deleted artifact, a tenant webhook endpoint and manual lineage around them) leave
every kind of event on the stream. Then all of them, and every dispatch command, are
published again in reverse order under new ``Nats-Msg-Id``s (JetStream stores them again; the
event ids are the same): no run changes, no history grows, no callback or edge is added, no
new event is decided. And a cancellation that overtakes its run's submission still ends the
run once."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest

from controlroom_contracts import subjects
from controlroom_contracts.api import JobRequest
from controlroom_contracts.events import EVENT_BY_SUBJECT, CancelRequested, JobSubmitted
from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stream_reader import read_stream
from controlroom_devstack.submitter import Submission, Submitter
from controlroom_devstack.waiting import eventually

from .conftest import Results, token
from .replay import DispatchCapture, publish_again, snapshot
from .scenario import Ledger, assert_exactly_once, chaos_stack, dead_letters, drained, job, row

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

NOT_ON_THE_STREAM = {subjects.RUN_HEARTBEAT}
"""Plain NATS messages, never stored, so never delivered twice by JetStream."""


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    # A webhook that keeps failing fails for good after two attempts (webhook.failed).
    env = {"CONTROLROOM_WEBHOOK_MAX_ATTEMPTS": "2", "CONTROLROOM_WEBHOOK_MAX_BACKOFF_SECONDS": "1"}
    with chaos_stack("redelivery", **env) as stack:
        yield stack


@pytest.fixture
async def capture(chaos: ChaosStack) -> AsyncIterator[DispatchCapture]:
    found = DispatchCapture(chaos.nats_url)
    await found.start()
    yield found
    await found.stop()


def _client(chaos: ChaosStack, tenant: str, role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=chaos.url("gateway"),
        headers={"Authorization": f"Bearer {token(tenant, role)}"},
        timeout=30,
    )


async def _status(api: httpx.AsyncClient, run_id: str, *wanted: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if view["status"] in wanted else None

    return await eventually(reached, timeout=60, interval=0.2, what=f"{run_id} {wanted}")


@pytest.fixture(scope="module")
async def refusing() -> AsyncIterator[CallbackReceiver]:
    """A webhook receiver that answers 500 to everything."""
    server = CallbackReceiver(fail_first=1_000_000)
    await server.start()
    yield server
    await server.stop()


async def _administer(
    admin: httpx.AsyncClient, receiver: CallbackReceiver, refusing: CallbackReceiver
) -> None:
    """Tenant endpoints (one that always fails, one removed again) and a manual lineage edge,
    removed, restored and removed again."""
    await admin.post("/api/v1/webhook-endpoints", json={"url": receiver.url("endpoint")})
    failing = {"url": refusing.url("refuses"), "event_types": ["run.failed"]}
    (await admin.post("/api/v1/webhook-endpoints", json=failing)).raise_for_status()
    gone = (await admin.post("/api/v1/webhook-endpoints", json={"url": receiver.url("x")})).json()
    await admin.delete(f"/api/v1/webhook-endpoints/{gone['id']}")
    manual = {"source": "raw.m", "target": "gold.m"}
    edge = (await admin.post("/api/v1/lineage/edges", json=manual)).json()
    await admin.delete(f"/api/v1/lineage/edges/{edge['id']}")
    (await admin.post(f"/api/v1/lineage/edges/{edge['id']}/restore")).raise_for_status()
    await admin.delete(f"/api/v1/lineage/edges/{edge['id']}", params={"reason": "again"})


def _jobs(receiver: CallbackReceiver) -> list[dict[str, Any]]:
    """Two that complete (with an output file), one that fails, one retried, one to cancel."""
    write = "mkdir -p output && echo rows > output/r.csv && echo ok"
    retried = 'if [ "$CONTROLROOM_ATTEMPT" = 1 ]; then exit 3; fi; echo ok'
    retry_on_3 = {"backoff_seconds": 0, "retry_on_exit_codes": [3]}
    return [
        job(receiver, "completes", write),
        job(receiver, "completes", write),
        job(receiver, "fails", "exit 3", retry={"max_attempts": 1}),
        job(receiver, "retried", retried, retry=retry_on_3),
        job(receiver, "cancelled", "sleep 60"),
    ]


async def _push_then_cancel(api: httpx.AsyncClient, run_id: str) -> None:
    """Progress, a log line and an artifact pushed, a Continue callback, then a cancel."""
    await _status(api, run_id, "running")
    for body in (
        {"event_type": "progress", "data": {"percent": 50, "message": "half"}},
        {"event_type": "log", "data": {"lines": ["pushed"]}},
        {"event_type": "artifact", "data": {"path": "out/x.csv", "url": "s3://b/x.csv"}},
    ):
        (await api.post(f"/api/v1/runs/{run_id}/events", json=body)).raise_for_status()
    continued = {"run_id": run_id, "status": "working", "summary": "from Continue"}
    (await api.post("/api/v1/webhooks/continue", json=continued)).raise_for_status()
    (await api.post(f"/api/v1/runs/{run_id}/cancel")).raise_for_status()


async def _every_kind_of_event(
    chaos: ChaosStack,
    receiver: CallbackReceiver,
    refusing: CallbackReceiver,
    tenant: str,
    api: httpx.AsyncClient,
) -> tuple[Submitter, Ledger]:
    """Runs and administration that between them put every event type on the stream."""
    tokens = {tenant: token(tenant)}
    async with _client(chaos, tenant, "admin") as admin:
        await _administer(admin, receiver, refusing)
        submitter = Submitter(chaos.url("gateway"), tokens)
        await submitter.run([(tenant, body) for body in _jobs(receiver)], deadline=60)
        ledger = Ledger(chaos, submitter, receiver, tokens)
        await _push_then_cancel(api, str(submitter.submissions[-1].run_id))
        found = await ledger.settle(timeout=120)
        assert not found.lost, found.summary()
        view = (await api.get(f"/api/v1/runs/{submitter.submissions[0].run_id}")).json()
        artifact = next(a for a in view["artifacts"] if a["path"] == "output/r.csv")
        (await admin.delete(f"/api/v1/artifacts/{artifact['id']}")).raise_for_status()

    async def webhook_failed() -> bool:
        stored = await read_stream(chaos.nats_url, (subjects.WEBHOOK_FAILED,))
        return any(m.data.get("tenant_id") == tenant for m in stored)

    await eventually(webhook_failed, timeout=60, interval=0.5, what="a webhook that failed")
    await drained(chaos)
    return submitter, ledger


async def test_duplicate_and_reverse_order_delivery_of_every_event_has_no_second_effect(
    chaos: ChaosStack,
    receiver: CallbackReceiver,
    refusing: CallbackReceiver,
    results: Results,
    capture: DispatchCapture,
) -> None:
    tenant = "redelivery"
    async with _client(chaos, tenant, "operator") as api:
        submitter, ledger = await _every_kind_of_event(chaos, receiver, refusing, tenant, api)
        first = await ledger.verdict()
        run_ids = list(first.records)
        before, stored = await snapshot(chaos.nats_url, api, receiver, tenant, run_ids)
        dispatches = [m for m in capture.seen if m.data.get("tenant_id") == tenant]
        letters_before = {r.sequence for r in await dead_letters(chaos)}

        # Newest first: every message after those it followed the first time.
        again = sorted([*stored, *dispatches], key=lambda m: m.stored_at, reverse=True)
        count = await publish_again(chaos.nats_url, again)
        # A submission as an internal system publishes it: no "the gateway wrote it" mark.
        submissions = [m for m in stored if m.subject == subjects.JOB_SUBMITTED]
        count += await publish_again(
            chaos.nats_url, submissions, headers={"Controlroom-Origin": None}
        )
        await drained(chaos)
        # A marker run (of another tenant, to keep it out of the snapshot): consumers handle
        # the stream in order, so once its effects are in place the copies before it have
        # been handled too.
        marker_tokens = {"marker": token("marker")}
        marker = Submitter(chaos.url("gateway"), marker_tokens)
        await marker.run([("marker", job(receiver, "marker"))], deadline=60)
        marked = await Ledger(chaos, marker, receiver, marker_tokens).settle(60)
        assert not marked.lost, marked.summary()
        after, _ = await snapshot(chaos.nats_url, api, receiver, tenant, run_ids)
    second = await ledger.verdict()
    letters = [r for r in await dead_letters(chaos) if r.sequence not in letters_before]

    kinds = {m.subject for m in again}
    missing = set(EVENT_BY_SUBJECT) - kinds - NOT_ON_THE_STREAM
    differences = before.differences(after)
    results.record(
        row(
            "duplicate + reverse-order delivery of every event type",
            second,
            "-",
            f"{count} messages of {len(kinds)} subjects published again (every event type "
            f"and the dispatch command); statuses {second.statuses()}; second effects: "
            f"{len(differences)}; dead letters {len(letters)}",
        )
    )
    assert not missing, f"event types not exercised: {sorted(missing)}"
    assert not differences, differences
    assert_exactly_once(second)
    assert second.statuses() == {"completed": 3, "failed": 1, "cancelled": 1}, second.summary()
    assert not letters, [r.data.get("reason") for r in letters]


async def test_a_cancellation_that_overtakes_its_submission_ends_the_run_once(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results
) -> None:
    """An internal system's JobSubmitted arrives after the CancelRequested for its run."""
    tenant = "overtaken"
    run_id = uuid.uuid4()
    body = job(receiver, "overtaken", "sleep 60")
    submitted = JobSubmitted(tenant_id=tenant, run_id=run_id, job=JobRequest.model_validate(body))
    cancel = CancelRequested(tenant_id=tenant, run_id=run_id, requested_by="chaos")
    client = await nats.connect(chaos.nats_url)
    try:
        js = client.jetstream()
        for event in (cancel, submitted):
            headers = {"Nats-Msg-Id": str(event.event_id)}
            await js.publish(event.subject, event.model_dump_json().encode(), headers=headers)
    finally:
        await client.close()
    submitter = Submitter(chaos.url("gateway"), {tenant: token(tenant)})
    submitter.submissions.append(
        Submission(tenant, body, run_id=str(run_id), accepted_at=datetime.now(UTC))
    )
    found = await Ledger(chaos, submitter, receiver, {tenant: token(tenant)}).settle(60)
    results.record(
        row(
            "cancellation delivered before its run's submission",
            found,
            "-",
            f"statuses {found.statuses()}",
        )
    )
    assert_exactly_once(found)
    assert found.statuses() == {"cancelled": 1}, found.summary()


REPORTED_AGAIN = (
    subjects.JOB_SUBMITTED,
    subjects.ATTEMPT_STARTED,
    subjects.ATTEMPT_COMPLETED,
    subjects.ATTEMPT_FAILED,
    subjects.ATTEMPT_CANCELLED,
    subjects.CANCEL_REQUESTED,
)
"""What a producer outside the scheduler may say twice under two event ids: an internal
system retrying a submission, an executor re-reporting an attempt after a restart."""


async def test_the_same_facts_reported_again_under_new_event_ids_change_nothing(
    chaos: ChaosStack, receiver: CallbackReceiver, refusing: CallbackReceiver, results: Results
) -> None:
    tenant = "reported-again"
    async with _client(chaos, tenant, "operator") as api:
        _submitter, ledger = await _every_kind_of_event(chaos, receiver, refusing, tenant, api)
        run_ids = list((await ledger.verdict()).records)
        before, stored = await snapshot(chaos.nats_url, api, receiver, tenant, run_ids)
        letters_before = {r.sequence for r in await dead_letters(chaos)}
        again = []
        for message in sorted(stored, key=lambda m: m.stored_at, reverse=True):
            if message.subject in REPORTED_AGAIN:
                data = {**message.data, "event_id": str(uuid.uuid4())}
                again.append(replace(message, data=data, raw=json.dumps(data).encode()))
        await publish_again(chaos.nats_url, again, headers={"Controlroom-Origin": None})
        await drained(chaos)
        marker_tokens = {"marker": token("marker")}
        marker = Submitter(chaos.url("gateway"), marker_tokens)
        await marker.run([("marker", job(receiver, "marker"))], deadline=60)
        assert not (await Ledger(chaos, marker, receiver, marker_tokens).settle(60)).lost
        after, _ = await snapshot(chaos.nats_url, api, receiver, tenant, run_ids)
    for message in again:  # the copies themselves are not effects
        after.event_ids.pop(message.event_id, None)
    second = await ledger.verdict()
    letters = [r for r in await dead_letters(chaos) if r.sequence not in letters_before]
    differences = before.differences(after)
    results.record(
        row(
            "the same facts reported again under new event ids",
            second,
            "-",
            f"{len(again)} submissions, attempt reports and cancellations published again "
            f"with new event ids, newest first; statuses {second.statuses()}; second effects: "
            f"{len(differences)}; dead letters {len(letters)}",
        )
    )
    assert not differences, differences
    assert_exactly_once(second)
    assert not letters, [r.data.get("reason") for r in letters]
