"""A consumer across a Postgres outage: messages that arrive meanwhile wait, none is
dead-lettered, and every one is applied once Postgres is back, without a restart."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import nats
import pytest
import sqlalchemy as sa

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.infra import Postgres
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.settings import ServiceSettings
from controlroom_runtime.unit_of_work import UnitOfWork

from .test_consumer import MIGRATIONS, applied, metadata

OUTAGE_SECONDS = 8.0
"""Longer than a message's retries took to reach the dead-letter limit before (about 2 s at a
limit of 2)."""


def _completed() -> RunCompleted:
    return RunCompleted(
        tenant_id="outage", run_id=uuid4(), attempt=1, summary="ok", finished_at=utc_now()
    )


@pytest.mark.parametrize("concurrency", [1, 4], ids=["in-order", "concurrent"])
async def test_messages_that_arrive_while_postgres_is_down_wait_and_are_not_dead_lettered(
    nats_url: str, own_postgres: Postgres, event_tap: EventTap, concurrency: int
) -> None:
    name = f"outage-{concurrency}"

    async def handler(uow: UnitOfWork, event: RunCompleted) -> None:
        await uow.session.execute(sa.insert(applied).values(event_id=event.event_id))

    runtime = ServiceRuntime(
        name=name,
        settings=ServiceSettings(nats_url=nats_url, database_url=own_postgres.url()),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
    )
    runtime.consume(
        ConsumerSpec[RunCompleted](
            name=name,
            stream=subjects.EVENTS_STREAM,
            subjects=[subjects.RUN_COMPLETED],
            models={subjects.RUN_COMPLETED: RunCompleted},
            handler=handler,
            max_deliver=2,
            concurrency=concurrency,
            only_new=True,
        )
    )
    await runtime.start()
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        before = [_completed() for _ in range(3)]
        during = [_completed() for _ in range(10)]

        async def applied_ids(expected: int) -> set[UUID] | None:
            async with runtime.sessions() as session:
                ids = set((await session.execute(sa.select(applied.c.event_id))).scalars())
            return ids if len(ids) >= expected else None

        for event in before:
            await js.publish(event.subject, event.model_dump_json().encode())
        await eventually(lambda: applied_ids(len(before)), what="the first events applied")

        await asyncio.to_thread(own_postgres.stop)
        for event in during:
            await js.publish(event.subject, event.model_dump_json().encode())
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not await runtime.dependencies_reachable()
        await asyncio.to_thread(own_postgres.start)

        everything = before + during
        ids = await eventually(
            lambda: applied_ids(len(everything)), timeout=60, what="every event applied"
        )
        assert ids == {e.event_id for e in everything}
        assert event_tap.matching(subjects.deadletter_subject(name)) == []
        waited = runtime.metrics.registry.get_sample_value(
            "controlroom_messages_consumed_total",
            {"consumer": name, "outcome": "waited_for_outage"},
        )
        assert waited is not None and waited >= 1
    finally:
        await client.close()
        await runtime.stop()
