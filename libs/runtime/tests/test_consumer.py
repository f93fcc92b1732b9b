"""The batched in-order consumer against a real nats-server and Postgres.

A backlog waits in the stream before the consumer starts, so it is handled in batches; in it
are a message that fails every time, a redelivered duplicate and a message that is not JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID, uuid4

import nats
import pytest
import sqlalchemy as sa

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.pytest_plugin import purge_streams
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_runtime.consumer import BatchHandler, ConsumerSpec
from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.settings import ServiceSettings
from controlroom_runtime.streams import provision_streams
from controlroom_runtime.unit_of_work import UnitOfWork

MIGRATIONS = Path(__file__).parent / "consumer_migrations"
metadata = sa.MetaData(schema="consumer_test")
outbox_table(metadata)
inbox_table(metadata)
applied = sa.Table(
    "applied",
    metadata,
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
)


def _completed() -> RunCompleted:
    return RunCompleted(
        tenant_id="t", run_id=uuid4(), attempt=1, summary="ok", finished_at=utc_now()
    )


@pytest.mark.parametrize("set_based", [False, True], ids=["per-message", "set-based"])
async def test_a_backlog_is_handled_in_order_in_batches_and_a_failing_message_alone(
    nats_url: str, database_url: str, event_tap: EventTap, set_based: bool
) -> None:
    good = [_completed() for _ in range(20)]
    poison = _completed()
    backlog = good[:10] + [poison] + good[10:]

    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await provision_streams(js)
        for event in backlog:
            await js.publish(event.subject, event.model_dump_json().encode())
        # The same event again (a publisher retry outside the duplicate window), and garbage.
        await js.publish(good[3].subject, good[3].model_dump_json().encode())
        await js.publish(subjects.RUN_COMPLETED, b"{not json")
    finally:
        await client.close()

    async def handler(uow: UnitOfWork, event: RunCompleted) -> None:
        await uow.session.execute(sa.insert(applied).values(event_id=event.event_id))
        if event.event_id == poison.event_id:
            raise RuntimeError("this message always fails")

    batch_calls: list[int] = []

    async def batch_handler(uow: UnitOfWork, events: Sequence[RunCompleted]) -> None:
        batch_calls.append(len(events))
        await uow.session.execute(
            sa.insert(applied), [{"event_id": event.event_id} for event in events]
        )
        if any(event.event_id == poison.event_id for event in events):
            raise RuntimeError("this message always fails")

    batched: BatchHandler[RunCompleted] | None = batch_handler if set_based else None

    runtime = ServiceRuntime(
        name="consumer-test",
        settings=ServiceSettings(nats_url=nats_url, database_url=database_url),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
    )
    runtime.consume(
        ConsumerSpec[RunCompleted](
            name="consumer-test",
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.RUN_COMPLETED],
            models={subjects.RUN_COMPLETED: RunCompleted},
            handler=handler,
            batch_handler=batched,
            max_deliver=2,
            batch_size=8,  # the backlog makes three batches, one of them with the failing message
        )
    )
    await runtime.start()
    try:

        async def applied_ids() -> list[UUID] | None:
            async with runtime.sessions() as session:
                rows = await session.execute(sa.select(applied.c.event_id).order_by("position"))
            ids = list(rows.scalars())
            return ids if len(ids) == len(good) else None

        ids = await eventually(applied_ids, what="every good event applied")
        # Exactly once each (the duplicate changed nothing), in stream order; the failing
        # message's effect was rolled back with it.
        assert ids == [e.event_id for e in good]

        poisoned = await event_tap.wait_for(
            subjects.deadletter_subject("consumer-test"),
            lambda d: str(poison.event_id) in d["payload"],
        )
        assert "handler failed 2 times" in poisoned.data["reason"]
        garbage = await event_tap.wait_for(
            subjects.deadletter_subject("consumer-test"),
            lambda d: d["payload"] == "{not json",
        )
        assert "invalid RunCompleted" in garbage.data["reason"]

        registry = runtime.metrics.registry
        batches = registry.get_sample_value(
            "controlroom_consumer_batch_messages_count", {"consumer": "consumer-test"}
        )
        handled = registry.get_sample_value(
            "controlroom_messages_consumed_total",
            {"consumer": "consumer-test", "outcome": "handled"},
        )
        duplicates = registry.get_sample_value(
            "controlroom_messages_consumed_total",
            {"consumer": "consumer-test", "outcome": "duplicate"},
        )
        assert handled == len(good)
        assert duplicates == 1
        # The backlog went through in transactions of many messages, not one per message.
        assert batches is not None and 1 <= batches < len(good) / 2
        # The set-based handler took whole batches (the failing one too, before its retry).
        assert (max(batch_calls, default=0) > 1) is set_based
    finally:
        await runtime.stop()
        await purge_streams(nats_url)
