"""Outbox, relay and inbox against a real Postgres and nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from uuid import uuid4

import nats
import sqlalchemy as sa
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_runtime import db, inbox
from controlroom_runtime.jetstream_publisher import JetStreamPublisher, PublishResult, Refused
from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_runtime.outbox import Outbox, OutgoingMessage
from controlroom_runtime.unit_of_work import unit_of_work


@asynccontextmanager
async def _rig(
    nats_url: str, database_url: str, schema: str, stream: StreamConfig
) -> AsyncIterator[tuple[JetStreamContext, async_sessionmaker[AsyncSession], sa.Table, sa.Table]]:
    """A stream, and an outbox and inbox in a schema of their own, for one test; the
    client's publisher is ``_publisher(js)``."""
    metadata = sa.MetaData(schema=schema)
    outbox, inbox_t = outbox_table(metadata), inbox_table(metadata)
    engine = db.create_engine(database_url)
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        publisher = JetStreamPublisher(client, max_pending=PENDING, ack_timeout=2.0)
        await publisher.start()
        _publishers[id(js)] = publisher
        await js.add_stream(stream)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
        yield js, db.session_factory(engine), outbox, inbox_t
    finally:
        _publishers.pop(id(js), None)
        await client.close()
        await engine.dispose()


PENDING = 4
"""A small number of acks awaited at once, so that a leak of them would show in a few tries."""
_publishers: dict[int, JetStreamPublisher] = {}


def _publisher(js: JetStreamContext) -> JetStreamPublisher:
    return _publishers[id(js)]


def _event() -> RunCompleted:
    return RunCompleted(
        tenant_id="t", run_id=uuid4(), attempt=1, summary="ok", finished_at=utc_now()
    )


async def test_relay_publishes_what_a_crash_left_and_jetstream_drops_duplicates(
    nats_url: str, database_url: str
) -> None:
    stream = StreamConfig(name="T", subjects=["controlroom.events.>"], duplicate_window=60)
    async with _rig(nats_url, database_url, "rt", stream) as (js, sessions, outbox, inbox_t):
        published: list[str] = []

        async def publish(messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
            stored = await _publisher(js)(messages)
            published.extend(str(m.id) for m, ok in zip(messages, stored, strict=True) if ok)
            return stored

        box = Outbox(outbox, sessions, publish)
        first, second = _event(), _event()

        # A crash between commit and publish: stage and commit, but never call publish.
        async with sessions.begin() as session:
            for event in (first, second):
                await box.stage(session, _outgoing(event))
        # Someone already published `first` before the crash: the relay's copy is a duplicate.
        await js.publish(first.subject, b"{}", headers={"Nats-Msg-Id": str(first.event_id)})

        assert await box.relay_once(older_than=timedelta(0)) == 2
        assert published == [str(first.event_id), str(second.event_id)]
        info = await js.stream_info("T")
        assert info.state.messages == 2  # first once (deduplicated), second once
        async with sessions() as session:
            left = await session.scalar(sa.select(sa.func.count()).select_from(outbox))
        assert left == 0
        assert await box.relay_once(older_than=timedelta(0)) == 0

        # A rolled-back transaction publishes nothing.
        try:
            async with unit_of_work(sessions, box) as uow:
                await uow.emit(_event())
                raise RuntimeError("effect failed")
        except RuntimeError:
            pass
        assert len(published) == 2

        # The inbox: the same event id is handled once per consumer.
        async with sessions.begin() as session:
            assert await inbox.claim(session, inbox_t, "c1", first.event_id)
            assert not await inbox.claim(session, inbox_t, "c1", first.event_id)
            assert await inbox.claim(session, inbox_t, "c2", first.event_id)


async def test_pipelined_publish_keeps_order_from_the_first_failure_on(
    nats_url: str, database_url: str
) -> None:
    """Messages are written before any ack is awaited; if one is not stored, it and every
    message after it stay in the outbox and are relayed again in order (JetStream drops the
    copies of those that were stored after all)."""
    stream = StreamConfig(name="P", subjects=["p.ok.>"], duplicate_window=60)
    async with _rig(nats_url, database_url, "rt2", stream) as (js, sessions, outbox, _inbox):
        box = Outbox(outbox, sessions, _publisher(js))
        first, missing, last = (
            OutgoingMessage(uuid4(), subject, b"{}", {"Nats-Msg-Id": str(n)})
            for n, subject in enumerate(("p.ok.1", "p.later.2", "p.ok.3"))
        )
        async with sessions.begin() as session:
            await box.stage_many(session, [first, missing, last])

        # No stream takes "p.later.2" yet: only the message before it counts as sent.
        assert await box.publish([first, missing, last]) == 1
        assert (await js.stream_info("P")).state.messages == 2  # 1 and 3 were stored
        assert await box.relay_once(older_than=timedelta(0)) == 0  # 2 still has no stream

        await js.add_stream(StreamConfig(name="L", subjects=["p.later.>"]))
        assert await box.relay_once(older_than=timedelta(0)) == 2
        assert (await js.stream_info("L")).state.messages == 1
        assert (await js.stream_info("P")).state.messages == 2  # 3 again, deduplicated
        async with sessions() as session:
            left = await session.scalar(sa.select(sa.func.count()).select_from(outbox))
        assert left == 0


def _outgoing(event: RunCompleted) -> OutgoingMessage:
    from controlroom_runtime.outbox import outgoing

    return outgoing(event, message_id=event.event_id, subject=event.subject)


async def test_the_relay_republishes_a_transactions_messages_in_the_order_they_were_staged(
    nats_url: str, database_url: str
) -> None:
    """A transaction's rows share ``created_at``; where a row lies in the table is no order
    either (an update or a vacuum moves it). The relay follows the staging order."""
    stream = StreamConfig(name="O", subjects=["o.>"], duplicate_window=60)
    async with _rig(nats_url, database_url, "rt3", stream) as (js, sessions, outbox, _inbox):
        published: list[str] = []

        async def publish(messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
            stored = await _publisher(js)(messages)
            published.extend(m.subject for m, ok in zip(messages, stored, strict=True) if ok)
            return stored

        box = Outbox(outbox, sessions, publish)
        staged = [
            OutgoingMessage(uuid4(), f"o.{n}", b"{}", {"Nats-Msg-Id": str(uuid4())})
            for n in range(5)
        ]
        async with sessions.begin() as session:
            await box.stage_many(session, staged)
        async with sessions.begin() as session:
            # The first row moves to the end of the table (a new version, and new index
            # entries, as a non-HOT update makes), with its created_at as it was.
            for step in ("1 microsecond", "-1 microsecond"):
                await session.execute(
                    sa.update(outbox)
                    .where(outbox.c.id == staged[0].id)
                    .values(created_at=outbox.c.created_at + sa.text(f"interval '{step}'"))
                )
        assert await box.relay_once(older_than=timedelta(0)) == len(staged)
        assert published == [m.subject for m in staged]


async def test_a_message_too_large_to_publish_is_quarantined_and_the_rest_go_out(
    nats_url: str, database_url: str
) -> None:
    """A message over the broker's max_payload can never be published: it is set aside with
    its reason (kept whole in the outbox), the messages behind it are published in order, and
    no number of such tries wedges publishing (each once leaked a pending-ack slot)."""
    stream = StreamConfig(name="Q", subjects=["q.>"], duplicate_window=60)
    async with _rig(nats_url, database_url, "rt4", stream) as (js, sessions, outbox, _inbox):
        quarantined: list[int] = []
        box = Outbox(outbox, sessions, _publisher(js), on_quarantined=quarantined.append)
        limit = js._nc.max_payload
        huge = OutgoingMessage(uuid4(), "q.huge", b"x" * limit, {"Nats-Msg-Id": str(uuid4())})
        first, last = (
            OutgoingMessage(uuid4(), f"q.{n}", b"{}", {"Nats-Msg-Id": str(uuid4())}) for n in (1, 2)
        )
        async with sessions.begin() as session:
            await box.stage_many(session, [first, huge, last])

        assert await box.publish([first, huge, last]) == 2
        assert (await js.stream_info("Q")).state.messages == 2
        async with sessions() as session:
            row = (
                await session.execute(
                    sa.select(outbox.c.id, outbox.c.quarantine_reason, outbox.c.payload).where(
                        outbox.c.quarantined_at.is_not(None)
                    )
                )
            ).one()
        assert row.id == huge.id and len(row.payload) == limit
        assert "max_payload" in row.quarantine_reason
        assert quarantined == [1]
        # The relay leaves it aside, and has nothing else to do.
        assert await box.relay_once(older_than=timedelta(0)) == 0

        for _ in range(PENDING * 3):
            results = await _publisher(js)([huge])
            assert isinstance(results[0], Refused)
        assert await _publisher(js)([OutgoingMessage(uuid4(), "q.3", b"{}", {})]) == [True]
        assert _publisher(js).pending == 0


async def test_a_publish_that_fails_to_write_frees_its_place_for_the_next(
    nats_url: str, database_url: str
) -> None:
    """Writes that fail (here: the connection is closed) leave no ack awaited for ever."""
    stream = StreamConfig(name="W", subjects=["w.>"])
    async with _rig(nats_url, database_url, "rt5", stream) as (js, _sessions, _outbox, _inbox):
        message = OutgoingMessage(uuid4(), "w.1", b"{}", {})
        await js._nc.drain()
        for _ in range(PENDING * 2):
            assert await _publisher(js)([message]) == [False]
        assert _publisher(js).pending == 0
