"""Durable JetStream consumers: decode, dead-letter what cannot be decoded, apply exactly once.

A consumer here is thin: it validates the message against its contract, records the event id
in the inbox inside the same transaction as the handler's effect, and acks only after commit.
A message that fails validation goes to ``controlroom.deadletter.<consumer>`` with the reason;
a message whose handler keeps failing is retried with backoff and dead-lettered after
``max_deliver`` attempts, so nothing is acked away silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from uuid import NAMESPACE_URL, uuid5

import sqlalchemy as sa
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from controlroom_contracts.base import Message
from controlroom_contracts.deadletter import DeadLetter
from controlroom_contracts.subjects import deadletter_subject
from controlroom_runtime import inbox
from controlroom_runtime.logs import log_context
from controlroom_runtime.outbox import OutgoingMessage
from controlroom_runtime.tracing import extract_context, tracer
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from faststream.nats.message import NatsMessage

    from controlroom_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[UnitOfWork, M], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec(Generic[M]):
    """What one durable consumer listens to and how it handles each message type."""

    name: str
    stream: str
    subjects: Sequence[str]
    models: Mapping[str, type[M]]
    handler: Handler[M]
    max_deliver: int = 10
    ack_wait_seconds: float = 60.0
    batch_size: int = 64
    concurrency: int = 1
    """Messages handled at once; above 1, ordering between messages is not kept."""
    only_new: bool = False
    """A consumer created for this replica starts at new messages instead of the history."""

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW if self.only_new else DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            # JetStream stops redelivering after this; our own counter dead-letters first.
            max_deliver=self.max_deliver + 1,
            filter_subjects=list(self.subjects),
            max_ack_pending=1000,
        )


async def _keep_in_progress(msg: NatsMessage, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await msg.in_progress()


def _retry_delay(delivered: int) -> float:
    return float(min(2 ** max(delivered - 1, 0), 30))


async def _dead_letter(
    runtime: ServiceRuntime, consumer: str, msg: NatsMessage, reason: str, delivered: int
) -> None:
    raw = msg.raw_message
    record = DeadLetter(
        consumer=consumer,
        original_subject=raw.subject,
        reason=reason[:4000],
        payload=raw.data.decode("utf-8", errors="backslashreplace")[:512_000],
        headers={k: v for k, v in (raw.headers or {}).items()},
        delivery_count=delivered,
    )
    sequence = raw.metadata.sequence.stream if raw.metadata else 0
    await runtime.publish_now(
        OutgoingMessage(
            # Deterministic id: dead-lettering the same delivery twice publishes one record.
            id=uuid5(NAMESPACE_URL, f"deadletter/{consumer}/{sequence}/{raw.subject}"),
            subject=deadletter_subject(consumer),
            payload=record.model_dump_json().encode(),
            headers={"content-type": "application/json"},
        )
    )
    runtime.metrics.consumed(consumer, "dead_lettered").inc()
    log.warning(
        "message dead-lettered",
        extra={"consumer": consumer, "subject": raw.subject, "reason": reason[:500]},
    )


async def handle_message(
    runtime: ServiceRuntime, spec: ConsumerSpec[M], inbox_table: sa.Table, msg: NatsMessage
) -> None:
    raw = msg.raw_message
    delivered = raw.metadata.num_delivered if raw.metadata else 1
    model = spec.models.get(raw.subject)
    if model is None:
        await _dead_letter(runtime, spec.name, msg, f"no contract for subject {raw.subject}", 1)
        await msg.ack()
        return
    try:
        event = model.model_validate_json(raw.data)
    except ValidationError as exc:
        await _dead_letter(runtime, spec.name, msg, f"invalid {model.__name__}: {exc}", delivered)
        await msg.ack()
        return

    run_id = getattr(event, "run_id", None)
    started = time.perf_counter()
    span_name = f"{spec.name} handle {model.__name__}"
    with (
        tracer(__name__).start_as_current_span(
            span_name, context=extract_context(raw.headers), kind=SpanKind.CONSUMER
        ),
        log_context(run_id=run_id, tenant_id=event.tenant_id, event_id=event.event_id),
    ):
        # A slow handler (an executor running a job) keeps the message from being redelivered.
        keepalive = asyncio.create_task(_keep_in_progress(msg, spec.ack_wait_seconds / 3))
        try:
            async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
                if await inbox.claim(uow.session, inbox_table, spec.name, event.event_id):
                    await spec.handler(uow, event)
                    outcome = "handled"
                else:
                    outcome = "duplicate"
        except Exception as exc:
            if delivered >= spec.max_deliver:
                await _dead_letter(
                    runtime, spec.name, msg, f"handler failed {delivered} times: {exc!r}", delivered
                )
                await msg.ack()
                return
            runtime.metrics.consumed(spec.name, "retried").inc()
            log.warning(
                "handler failed; message will be redelivered",
                exc_info=True,
                extra={"consumer": spec.name, "delivered": delivered},
            )
            await msg.nack(delay=_retry_delay(delivered))
            return
        finally:
            keepalive.cancel()
        await msg.ack()
    runtime.metrics.consumed(spec.name, outcome).inc()
    runtime.metrics.handle_seconds(spec.name).observe(time.perf_counter() - started)
