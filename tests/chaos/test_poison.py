"""Poison and hostile messages published straight to NATS: each consumer of the subject puts
the message on ``controlroom.deadletter.<consumer>`` with its reason and the original bytes,
and goes on (runs submitted afterwards complete)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import nats
import pytest

from controlroom_contracts import subjects
from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stream_reader import Stored
from controlroom_devstack.submitter import Submitter
from controlroom_devstack.waiting import eventually

from .conftest import Results, token
from .scenario import Ledger, assert_exactly_once, chaos_stack, dead_letters, job, row

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

LABEL = "Chaos-Poison"
"""A header naming the poison message; dead-letter records keep the original headers."""


@dataclass(frozen=True)
class Poison:
    label: str
    subject: str
    payload: bytes


def _job_submitted_with(**changes: object) -> bytes:
    event: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "poison",
        "run_id": str(uuid.uuid4()),
        "job": {
            "job_type": "diagram_export",
            "spec": {"text": "x"},
            "code": {"files": [{"path": "main.sh", "content": "echo"}]},
            "created_by": "chaos",
        },
    }
    event.update(changes)
    return json.dumps(event).encode()


def poisons(max_payload: int) -> list[Poison]:
    nul_job = json.loads(_job_submitted_with())
    nul_job["job"]["spec"]["text"] = "nul \u0000 inside"
    return [
        Poison("malformed JSON", subjects.JOB_SUBMITTED, b'{"event_id": '),
        Poison("not UTF-8", subjects.RUN_FAILED, b"\xff\xfe\x00\x80 garbage"),
        Poison("JSON array", subjects.RUN_CANCELLED, b"[1, 2, 3]"),
        Poison(
            "schema-invalid decision",
            subjects.RUN_COMPLETED,
            json.dumps({"event_id": "nope", "tenant_id": "", "run_id": 5}).encode(),
        ),
        Poison(
            "schema-invalid report",
            subjects.ATTEMPT_COMPLETED,
            json.dumps({"run_id": "x", "attempt": -1}).encode(),
        ),
        Poison("deeply nested", subjects.JOB_SUBMITTED, b"[" * 50_000 + b"]" * 50_000),
        Poison("NUL in a string", subjects.JOB_SUBMITTED, json.dumps(nul_job).encode()),
        Poison(
            "oversized (just under max_payload)",
            subjects.JOB_SUBMITTED,
            _job_submitted_with(junk="x" * (max_payload - 8192), tenant_id=""),
        ),
        Poison("malformed dispatch", subjects.dispatch_subject("docker"), b"{"),
        Poison("malformed dispatch", subjects.dispatch_subject("k8s"), b"not json"),
    ]


def _matches(pattern: str, subject: str) -> bool:
    want, have = pattern.split("."), subject.split(".")
    for i, token_ in enumerate(want):
        if token_ == ">":
            return len(have) > i
        if i >= len(have) or (token_ != "*" and token_ != have[i]):
            return False
    return len(want) == len(have)


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosStack]:
    with chaos_stack("poison") as stack:
        yield stack


async def test_poison_messages_are_dead_lettered_with_a_reason_and_consumers_go_on(
    chaos: ChaosStack, receiver: CallbackReceiver, results: Results
) -> None:
    client = await nats.connect(chaos.nats_url)
    try:
        js = client.jetstream()
        consumers: dict[str, list[str]] = {}
        for stream in (subjects.EVENTS_STREAM, subjects.DISPATCH_STREAM):
            for info in await js.consumers_info(stream):
                config = info.config
                if config.durable_name:
                    filters = config.filter_subjects or [config.filter_subject or ">"]
                    consumers[config.durable_name] = list(filters)
        sent = poisons(client.max_payload)
        for poison in sent:
            headers = {LABEL: poison.label, "Nats-Msg-Id": str(uuid.uuid4())}
            await js.publish(poison.subject, poison.payload, headers=headers)
    finally:
        await client.close()
    expected = {
        (name, poison.subject, poison.label)
        for poison in sent
        for name, filters in consumers.items()
        if any(_matches(f, poison.subject) for f in filters)
    }

    def key(record: Stored) -> tuple[str, str, str]:
        letter = record.data
        return (letter["consumer"], letter["original_subject"], letter["headers"].get(LABEL, ""))

    async def all_dead_lettered() -> list[Stored] | None:
        found = [r for r in await dead_letters(chaos) if r.data["headers"].get(LABEL)]
        return found if {key(r) for r in found} >= expected else None

    try:
        letters = await eventually(all_dead_lettered, timeout=120, interval=0.5, what="letters")
    except AssertionError:
        letters = [r for r in await dead_letters(chaos) if r.data["headers"].get(LABEL)]
    by_key = {key(r): r for r in letters}

    # The consumers go on: runs submitted afterwards complete with every effect.
    tenant = "after-poison"
    tokens = {tenant: token(tenant)}
    submitter = Submitter(chaos.url("gateway"), tokens)
    await submitter.run([(tenant, job(receiver, f"after {n}")) for n in range(10)], deadline=60)
    found = await Ledger(chaos, submitter, receiver, tokens).settle(timeout=120)

    missing = sorted(expected - set(by_key))
    reasons = sorted({r.data["reason"].split(":")[0][:60] for r in letters})
    results.record(
        row(
            "poison and hostile messages published straight to NATS",
            found,
            "-",
            f"{len(sent)} messages (malformed, not UTF-8, schema-invalid, 100 KB of nesting, "
            f"NUL, {len(sent[7].payload) >> 10} KiB) -> {len(by_key)} of {len(expected)} "
            f"expected dead-letter records; reasons {reasons}; then {found.runs} runs "
            f"{found.statuses()}",
        )
    )
    assert not missing, f"not dead-lettered: {missing}"
    for (consumer, subject, label), record in by_key.items():
        letter = record.data
        assert record.subject == subjects.deadletter_subject(consumer)
        assert letter["reason"], (consumer, label)
        original = next(p for p in sent if (p.subject, p.label) == (subject, label)).payload
        if not letter["truncated"]:
            assert letter["payload"].encode() == original, (consumer, label)
    assert_exactly_once(found)
    assert found.statuses() == {"completed": 10}, found.summary()
