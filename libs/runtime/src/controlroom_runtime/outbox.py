"""Transactional outbox: an event row commits with the state change, then is published.

Publishing right after commit keeps latency low; the relay re-publishes whatever a crash (or a
NATS outage) left unsent. ``Nats-Msg-Id`` is the event id, so JetStream drops a duplicate
publish inside the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_runtime.tracing import inject_headers

if TYPE_CHECKING:
    from nats.js.api import PubAck
    from nats.js.client import JetStreamContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    id: UUID
    subject: str
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Publisher(Protocol):
    """Publishes ``messages`` in order; returns, per message, whether the stream stored it."""

    async def __call__(self, messages: Sequence[OutgoingMessage]) -> list[bool]: ...


async def publish_pipelined(
    js: JetStreamContext, messages: Sequence[OutgoingMessage], *, timeout: float = 5.0
) -> list[bool]:
    """Write every message to the connection, in order, before waiting for any ack.

    One connection's messages reach the stream in the order they were written, so this keeps
    the order of awaiting each ack in turn, without a round trip (and a socket write) per
    message. A message not confirmed within ``timeout`` counts as not stored.
    """
    acks: list[asyncio.Future[PubAck]] = []
    try:
        for m in messages:
            acks.append(
                await js.publish_async(m.subject, m.payload, headers=m.headers, wait_stall=timeout)
            )
    except Exception:
        # Disconnected or stalled: what was not written is reported as not stored.
        log.warning("publishing to JetStream failed", exc_info=True)
    if acks:
        _done, late = await asyncio.wait(acks, timeout=timeout)
        for ack in late:
            ack.cancel()
    stored = [a.done() and not a.cancelled() and a.exception() is None for a in acks]
    return stored + [False] * (len(messages) - len(acks))


def _stored_in_order(messages: Sequence[OutgoingMessage], stored: list[bool]) -> list[UUID]:
    """The ids of the messages before the first one the stream did not store."""
    return [m.id for m, _ in zip(messages, itertools.takewhile(bool, stored), strict=False)]


def outgoing(message: BaseModel, *, message_id: UUID, subject: str) -> OutgoingMessage:
    """Serialise a message with its dedup id and the current trace context in its headers."""
    headers = inject_headers({"Nats-Msg-Id": str(message_id), "content-type": "application/json"})
    return OutgoingMessage(message_id, subject, message.model_dump_json().encode(), headers)


class Outbox:
    def __init__(
        self,
        table: sa.Table,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._table = table
        self._sessions = sessions
        self._publish = publisher
        self._on_published = on_published or (lambda _n: None)
        # Published but not yet deleted; deleted in batches by the relay loop, which saves a
        # transaction per event. A row that outlives a crash here is re-published and dropped
        # by JetStream's duplicate window (its Nats-Msg-Id is the event id).
        self._published: list[UUID] = []
        self._publishing: set[asyncio.Task[int]] = set()

    async def stage(self, session: AsyncSession, message: OutgoingMessage) -> None:
        """Add the message inside the caller's transaction."""
        await self.stage_many(session, [message])

    async def stage_many(self, session: AsyncSession, messages: Sequence[OutgoingMessage]) -> None:
        """Add messages inside the caller's transaction, in one statement (the same SQL for any
        number of messages, so prepared once; a multi-row insert is a round of its own per row)."""
        await session.execute(_stage_many(self._table), staging_params(messages))

    async def publish(self, messages: Sequence[OutgoingMessage]) -> int:
        """Publish committed messages in order and forget those up to the first failure.

        From the first message the stream did not store on, every message stays in the outbox
        and the relay publishes them again in order (JetStream drops the copies of those that
        were stored after all, by their ``Nats-Msg-Id``).
        """
        if not messages:
            return 0
        return self._sent(_stored_in_order(messages, await self._publish(messages)), messages)

    def publish_soon(
        self, messages: Sequence[OutgoingMessage], *, independent: bool = False
    ) -> None:
        """``publish`` (or ``publish_independent``) in a task of its own: the caller goes on to
        its next transaction while the acks come back. The messages are committed, so what
        fails here the relay sends."""
        if messages:
            publish = self.publish_independent if independent else self.publish
            task = asyncio.create_task(publish(messages))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def finish_publishing(self, timeout: float = 5.0) -> None:
        """Wait for what ``publish_soon`` started (at stop; the relay covers what is cut off)."""
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=timeout)

    async def publish_independent(self, messages: Sequence[OutgoingMessage]) -> int:
        """Publish committed messages whose order does not matter; forget each one stored."""
        if not messages:
            return 0
        stored = await self._publish(messages)
        return self._sent([m.id for m, ok in zip(messages, stored, strict=True) if ok], messages)

    def _sent(self, ids: list[UUID], attempted: Sequence[OutgoingMessage]) -> int:
        """Remember published messages, to be deleted from the outbox by the relay loop."""
        if len(ids) < len(attempted):
            log.warning(
                "outbox publish failed; relay will retry",
                extra={"failed": len(attempted) - len(ids)},
            )
        if ids:
            self._published.extend(ids)
            self._on_published(len(ids))
        return len(ids)

    async def forget_published(self) -> int:
        """Delete the rows of messages already published."""
        done, self._published = self._published, []
        if done:
            try:
                async with self._sessions.begin() as session:
                    await session.execute(sa.delete(self._table).where(self._table.c.id.in_(done)))
            except Exception:
                self._published = done + self._published
                raise
        return len(done)

    async def relay_once(self, *, older_than: timedelta, limit: int = 500) -> int:
        """Publish rows older than ``older_than``; returns how many were published."""
        t = self._table
        await self.forget_published()  # never re-publish what was just sent
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    sa.select(t.c.id, t.c.subject, t.c.payload, t.c.headers)
                    .where(t.c.created_at < sa.func.now() - older_than)
                    .order_by(t.c.position)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            messages = [OutgoingMessage(r.id, r.subject, r.payload, r.headers) for r in rows]
            stored = await self._publish(messages) if messages else []
            # In order: from the first failure on, everything waits for the next pass.
            sent = _stored_in_order(messages, stored)
            if sent:
                await session.execute(sa.delete(t).where(t.c.id.in_(sent)))
        if sent:
            log.info("outbox relay re-published events", extra={"count": len(sent)})
            self._on_published(len(sent))
        return len(sent)

    async def run_relay(self, interval: float, stopping: asyncio.Event) -> None:
        """Relay loop for a service's lifetime; it never dies on a passing error.

        Only rows older than a few intervals are relayed, so a message being published right
        after its commit is not sent twice in the common case.
        """
        older_than = timedelta(seconds=max(5.0, interval * 5))
        while not stopping.is_set():
            try:
                await self.relay_once(older_than=older_than)
            except Exception:
                log.warning("outbox relay pass failed", exc_info=True)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=interval)
            except TimeoutError:
                pass


def staging_sql(table: sa.Table) -> str:
    """The INSERT that stages messages (bound by ``staging_binds``, filled by
    ``staging_params``) in the outbox ``table``, numbered in order. A statement of its own, or
    the last part of a larger one: the gateway writes runs and their messages in one."""
    return f"""
        INSERT INTO {table.fullname} (id, subject, payload, headers)
        SELECT id, subject, payload, headers::jsonb
        FROM unnest(:outbox_id, :outbox_subject, :outbox_payload, :outbox_headers)
             WITH ORDINALITY AS m(id, subject, payload, headers, n)
        ORDER BY n
        """


def staging_binds() -> list[sa.BindParameter[Any]]:
    return [
        sa.bindparam("outbox_id", type_=ARRAY(sa.Uuid)),
        sa.bindparam("outbox_subject", type_=ARRAY(sa.Text)),
        sa.bindparam("outbox_payload", type_=ARRAY(sa.LargeBinary)),
        sa.bindparam("outbox_headers", type_=ARRAY(sa.Text)),
    ]


def staging_params(messages: Sequence[OutgoingMessage]) -> dict[str, list[Any]]:
    return {
        "outbox_id": [m.id for m in messages],
        "outbox_subject": [m.subject for m in messages],
        "outbox_payload": [m.payload for m in messages],
        "outbox_headers": [json.dumps(m.headers) for m in messages],
    }


@functools.cache
def _stage_many(table: sa.Table) -> sa.TextClause:
    """The same SQL for any number of messages, so it is prepared once."""
    return sa.text(staging_sql(table)).bindparams(*staging_binds())
