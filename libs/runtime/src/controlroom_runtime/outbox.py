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
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_runtime.jetstream_publisher import PublishResult, Refused
from controlroom_runtime.tracing import inject_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    id: UUID
    subject: str
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Publisher(Protocol):
    """Publishes ``messages`` in order; returns, per message, whether the stream stored it,
    or why it never can (see ``controlroom_runtime.jetstream_publisher``)."""

    async def __call__(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]: ...


def _stored_in_order(
    messages: Sequence[OutgoingMessage], results: list[PublishResult]
) -> list[UUID]:
    """The ids of the stored messages before the first one not stored this time (a refused
    message is set aside, so it holds up nothing)."""
    stored = itertools.takewhile(
        lambda pair: pair[1] is not False, zip(messages, results, strict=True)
    )
    return [m.id for m, result in stored if result is True]


def _refused(messages: Sequence[OutgoingMessage], results: list[PublishResult]) -> dict[UUID, str]:
    return {
        m.id: r.reason for m, r in zip(messages, results, strict=True) if isinstance(r, Refused)
    }


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
        on_quarantined: Callable[[int], None] | None = None,
    ) -> None:
        self._table = table
        self._sessions = sessions
        self._publish = publisher
        self._on_published = on_published or (lambda _n: None)
        self._on_quarantined = on_quarantined or (lambda _n: None)
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
        results = await self._publish(messages)
        await self._quarantine_soon(_refused(messages, results))
        return self._sent(_stored_in_order(messages, results), messages)

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
        results = await self._publish(messages)
        await self._quarantine_soon(_refused(messages, results))
        stored = [m.id for m, result in zip(messages, results, strict=True) if result is True]
        return self._sent(stored, messages)

    async def _quarantine_soon(self, refused: dict[UUID, str]) -> None:
        """Set aside committed messages the broker refused for good; if that fails, the relay
        meets them again and sets them aside in its own transaction."""
        if refused:
            try:
                async with self._sessions.begin() as session:
                    await self._quarantine(session, refused)
            except Exception:
                log.warning("could not quarantine refused outbox rows", exc_info=True)

    async def _quarantine(self, session: AsyncSession, refused: dict[UUID, str]) -> None:
        t = self._table
        for message_id, reason in refused.items():
            await session.execute(
                sa.update(t)
                .where(t.c.id == message_id)
                .values(quarantined_at=sa.func.now(), quarantine_reason=reason)
            )
            # Nothing is dropped: the row keeps the whole message for an operator to act on.
            log.error(
                "outbox message quarantined: it can never be published",
                extra={"message_id": str(message_id), "reason": reason},
            )
        self._on_quarantined(len(refused))

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
                    .where(t.c.quarantined_at.is_(None))
                    .where(t.c.created_at < sa.func.now() - older_than)
                    .order_by(t.c.position)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            messages = [OutgoingMessage(r.id, r.subject, r.payload, r.headers) for r in rows]
            results = await self._publish(messages) if messages else []
            # In order: from the first failure on, everything waits for the next pass.
            sent = _stored_in_order(messages, results)
            if refused := _refused(messages, results):
                await self._quarantine(session, refused)
            if sent:
                await session.execute(sa.delete(t).where(t.c.id.in_(sent)))
        if sent:
            log.info("outbox relay re-published events", extra={"count": len(sent)})
            self._on_published(len(sent))
        return len(sent)

    async def oldest_unpublished_age(self) -> float | None:
        """Seconds since the oldest message still to be published was committed (quarantined
        ones aside), or None when there is none: a number that only grows means a stall."""
        t = self._table
        async with self._sessions() as session:
            age = await session.scalar(
                sa.select(
                    sa.func.extract("epoch", sa.func.now() - sa.func.min(t.c.created_at))
                ).where(t.c.quarantined_at.is_(None))
            )
        return None if age is None else float(age)

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
