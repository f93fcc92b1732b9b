"""Dead-lettered messages listed, shown and replayed (``make deadletters``), against a real
nats-server and Postgres: a replay reaches the consumer that failed it, once it is fixed."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import nats
import pytest
import sqlalchemy as sa

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now
from controlroom_contracts.deadletter import DeadLetter
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_runtime import deadletters
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.settings import ServiceSettings
from controlroom_runtime.streams import provision_streams
from controlroom_runtime.unit_of_work import UnitOfWork

from .test_consumer import MIGRATIONS, applied, metadata

CONSUMER = "deadletters-test"


def _completed() -> RunCompleted:
    return RunCompleted(
        tenant_id="t", run_id=uuid4(), attempt=1, summary="ok", finished_at=utc_now()
    )


async def test_dead_letters_are_listed_shown_and_replayed_to_the_consumer_once_fixed(
    nats_url: str, database_url: str, event_tap: EventTap, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = {"yes": True}

    async def handler(uow: UnitOfWork, event: RunCompleted) -> None:
        if broken["yes"]:
            raise RuntimeError("a bug in this handler")
        await uow.session.execute(sa.insert(applied).values(event_id=event.event_id))

    client = await nats.connect(nats_url)
    try:
        await provision_streams(client.jetstream())  # a dead-letter stream never written to
    finally:
        await client.close()
    assert await deadletters.run(["list"], nats_url) == 0
    assert capsys.readouterr().out.strip() == "no dead-lettered messages"

    runtime = ServiceRuntime(
        name=CONSUMER,
        settings=ServiceSettings(nats_url=nats_url, database_url=database_url),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
    )
    runtime.consume(
        ConsumerSpec[RunCompleted](
            name=CONSUMER,
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.RUN_COMPLETED],
            models={subjects.RUN_COMPLETED: RunCompleted},
            handler=handler,
            max_deliver=1,
            only_new=True,
        )
    )
    await runtime.start()
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        failed = [_completed() for _ in range(2)]
        for event in failed:
            await js.publish(event.subject, event.model_dump_json().encode())
        await js.publish(subjects.RUN_COMPLETED, b"{not json")

        async def three_dead_letters() -> bool:
            return len(event_tap.matching(subjects.deadletter_subject(CONSUMER))) >= 3

        await eventually(three_dead_letters, what="three dead letters")
        # One more record, whose payload was cut short: readable, not replayable.
        cut = DeadLetter(
            consumer="elsewhere",
            original_subject=subjects.RUN_COMPLETED,
            reason="too big",
            payload='{"cut',
            truncated=True,
        )
        await js.publish(subjects.deadletter_subject("elsewhere"), cut.model_dump_json().encode())

        capsys.readouterr()
        assert await deadletters.run(["list", "--consumer", CONSUMER], nats_url) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 3
        assert sum("handler failed 1 times" in line for line in listed) == 2
        assert sum("invalid RunCompleted" in line for line in listed) == 1
        sequences = {int(line.split()[0]) for line in listed if "handler failed" in line}

        first = min(sequences)
        assert await deadletters.run(["show", str(first)], nats_url) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["sequence"] == first and shown["consumer"] == CONSUMER
        assert UUID(shown["payload"]["event_id"]) in {e.event_id for e in failed}

        broken["yes"] = False  # the handler is fixed; the messages are replayed
        assert await deadletters.run(["replay", *map(str, sorted(sequences))], nats_url) == 0

        async def applied_ids() -> set[UUID] | None:
            async with runtime.sessions() as session:
                ids = set((await session.execute(sa.select(applied.c.event_id))).scalars())
            return ids if len(ids) >= len(failed) else None

        assert await eventually(applied_ids, what="the replayed events applied") == {
            e.event_id for e in failed
        }
        capsys.readouterr()
        assert await deadletters.run(["list", "--consumer", CONSUMER], nats_url) == 0
        left = capsys.readouterr().out.splitlines()
        assert len(left) == 1 and "invalid RunCompleted" in left[0]

        assert await deadletters.run(["replay", "--all", "--consumer", "elsewhere"], nats_url) == 1
        assert "cut short" in capsys.readouterr().err
        assert await deadletters.run(["show", "999999"], nats_url) == 1
    finally:
        await client.close()
        await runtime.stop()


async def test_a_dead_letter_records_that_a_body_it_could_not_carry_whole_was_cut(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    """A body that is not UTF-8 is recorded with escapes and marked truncated."""

    async def handler(_uow: UnitOfWork, _event: RunCompleted) -> None:
        raise AssertionError("never called: the message does not decode")

    runtime = ServiceRuntime(
        name="deadletters-bytes",
        settings=ServiceSettings(nats_url=nats_url, database_url=database_url),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
    )
    runtime.consume(
        ConsumerSpec[RunCompleted](
            name="deadletters-bytes",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.RUN_COMPLETED],
            models={subjects.RUN_COMPLETED: RunCompleted},
            handler=handler,
            only_new=True,
        )
    )
    await runtime.start()
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().publish(subjects.RUN_COMPLETED, b"\xff\xfe not json")
        record = await event_tap.wait_for(subjects.deadletter_subject("deadletters-bytes"))
        assert record.data["truncated"] is True
    finally:
        await client.close()
        await runtime.stop()
