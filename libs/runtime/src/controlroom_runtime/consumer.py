"""Durable JetStream consumers: decode, dead-letter what cannot be decoded, apply exactly once.

A consumer here is thin: it validates the message against its contract, records the event id
in the inbox inside the same transaction as the handler's effect, and acks only after commit.
A message that fails validation goes to ``controlroom.deadletter.<consumer>`` with the reason;
a message whose handler keeps failing is retried with backoff and dead-lettered after
``max_deliver`` attempts, so nothing is acked away silently. A failure because Postgres or NATS
is out of reach is no fault of the message: the consumer keeps the message (or batch) in
progress and waits the outage out, then handles it again, without counting the try.

Two ways to run, chosen by ``ConsumerSpec.concurrency``:

* **In order, batched** (concurrency 1, the default). The messages already waiting are handled
  in stream order in *one* transaction: one inbox insert, one commit and one outbox publish round
  for the whole batch instead of one per message. Under load this is what keeps a service's
  cost per event low; when idle a batch is a single message, so latency does not suffer. If any
  message of a batch fails, the transaction rolls back and the batch is handled again one
  message per transaction, so the failing message is retried (and finally dead-lettered) alone.
  A consumer may also give a ``batch_handler`` that applies the whole batch at once, set-based
  (a fixed number of statements per batch instead of some per message).
* **Concurrent** (concurrency > 1): each message in its own transaction, up to ``concurrency`` at
  once, with the delivery kept alive while a long handler (an executor running a job) works.

The pull loop speaks to nats-py directly rather than through faststream's subscriber: that
subscriber resolves its dependencies in a worker thread for every message, which cost more CPU
than the handlers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from uuid import NAMESPACE_URL, uuid5

from nats.aio.msg import Msg
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from controlroom_contracts.base import Message
from controlroom_contracts.deadletter import DeadLetter
from controlroom_contracts.subjects import deadletter_subject
from controlroom_runtime import inbox, message_headers
from controlroom_runtime.availability import is_unavailable
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.logs import log_context
from controlroom_runtime.outbox import OutgoingMessage
from controlroom_runtime.room import Reservation, Room, handling, reserve
from controlroom_runtime.tracing import extract_context, tracer
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from controlroom_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[UnitOfWork, M], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, Sequence[M]], Awaitable[None]]

IDLE_WAIT_SECONDS = 1.0
"""How long one pull waits for a message when there is none; also how soon a stop is noticed."""
DEAD_LETTER_PAYLOAD_CHARS = 512_000
"""The most of a message's body a dead-letter record carries (the record must itself fit in
the broker's max_payload); a record cut short says so and cannot be replayed."""
BACKLOG_WAIT_SECONDS = 0.25
"""Upper bound on a pull for messages the consumer reported as waiting (another replica may
have taken them in between)."""


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
    """Most messages handled in one transaction (in-order consumers only)."""
    concurrency: int = 1
    """Messages handled at once; above 1, ordering between messages is not kept."""
    only_new: bool = False
    """A consumer created for this replica starts at new messages instead of the history."""
    skip: Callable[[Msg], bool] | None = None
    """Messages for which this is true are acknowledged without being decoded or handled
    (their effect is known to be in place already)."""
    room: Room | None = None
    """Concurrent consumers only: fetch a message only when the room has a place; the handler
    may keep the place for work that outlives it (see ``controlroom_runtime.room``)."""
    batch_handler: BatchHandler[M] | None = None
    """Applies a batch of events (in stream order, duplicates removed) in one call. It must
    have the effect of ``handler`` applied to each event in turn; ``handler`` still handles
    the messages a failed batch retries one at a time."""

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


@dataclass(frozen=True)
class _Delivery(Generic[M]):
    msg: Msg
    event: M
    delivered: int


async def run_consumer(
    runtime: ServiceRuntime, spec: ConsumerSpec[M], stopping: asyncio.Event, grace: float
) -> None:
    """Handle the durable consumer's messages until ``stopping`` (the runtime's start has
    created or updated the consumer itself)."""
    sub = await runtime.jetstream.pull_subscribe_bind(durable=spec.name, stream=spec.stream)
    try:
        if spec.concurrency > 1:
            await _run_concurrently(runtime, spec, sub, stopping, grace)
        else:
            await _run_in_order(runtime, spec, sub, stopping)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _fetch(sub: JetStreamContext.PullSubscription, count: int, timeout: float) -> list[Msg]:
    try:
        return await sub.fetch(count, timeout=timeout)
    except TimeoutError:  # nats-py's timeouts subclass it
        return []
    except Exception:
        # Disconnected: nats-py reconnects by itself and the subscription survives it.
        log.warning("pull from JetStream failed; retrying", exc_info=True)
        await asyncio.sleep(1.0)
        return []


async def _fetch_unless_stopping(
    sub: JetStreamContext.PullSubscription, count: int, timeout: float, stopping: asyncio.Event
) -> list[Msg]:
    """An idle pull that gives up as soon as the service stops, so a stop is not held up by
    the pull's wait. A message cut off this way stays unacked and is redelivered."""
    pull = asyncio.ensure_future(_fetch(sub, count, timeout))
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait((pull, stop), return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if pull.done():
        return pull.result()
    pull.cancel()
    return []


def _waiting_after(msg: Msg) -> int:
    """Messages the consumer still had undelivered when ``msg`` was sent."""
    return msg.metadata.num_pending or 0


async def _run_in_order(
    runtime: ServiceRuntime,
    spec: ConsumerSpec[M],
    sub: JetStreamContext.PullSubscription,
    stopping: asyncio.Event,
) -> None:
    waiting = 0
    while not stopping.is_set():
        if waiting:
            # Messages are known to be there: a pull for them returns at once, as a batch.
            msgs = await _fetch(sub, min(waiting, spec.batch_size), BACKLOG_WAIT_SECONDS)
        else:
            # Nothing known to be waiting: wait for one, which returns as soon as it arrives
            # (a pull for many would linger until the batch filled or the pull expired).
            msgs = await _fetch_unless_stopping(sub, 1, IDLE_WAIT_SECONDS, stopping)
        waiting = _waiting_after(msgs[-1]) if msgs else 0
        if msgs:
            try:
                await handle_batch(runtime, spec, msgs)
            except Exception:
                # Not even the per-message path could finish (the broker or database went
                # away mid-ack or mid-dead-letter): what was not acked is redelivered after
                # ack_wait. The consumer itself must live on.
                log.exception("consumer could not finish a batch", extra={"consumer": spec.name})
                waiting = 0
                await asyncio.sleep(1.0)


async def _run_concurrently(
    runtime: ServiceRuntime,
    spec: ConsumerSpec[M],
    sub: JetStreamContext.PullSubscription,
    stopping: asyncio.Event,
    grace: float,
) -> None:
    slots = asyncio.Semaphore(spec.concurrency)
    running: set[asyncio.Task[None]] = set()
    room = spec.room

    async def handle_then_free(msg: Msg, reservation: Reservation | None) -> None:
        if reservation is not None:
            handling(reservation)
        try:
            delivery = await _decode(runtime, spec, msg)
            if delivery is not None:
                await handle_one(runtime, spec, delivery)
        except Exception:
            # Unacked, so redelivered after ack_wait; the loop goes on with other messages.
            log.exception("consumer could not finish a message", extra={"consumer": spec.name})
        finally:
            slots.release()
            if reservation is not None and not reservation.kept:
                reservation.free()

    try:
        while not stopping.is_set():
            await slots.acquire()
            if room is not None and not await room.wait_for_space(stopping):
                slots.release()
                continue
            msgs = await _fetch_unless_stopping(sub, 1, IDLE_WAIT_SECONDS, stopping)
            if not msgs:
                slots.release()
                continue
            reservation = reserve(room) if room is not None else None
            task = asyncio.create_task(handle_then_free(msgs[0], reservation))
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        if running:
            # Let handlers finish their current message; what is cut off is redelivered.
            _done, unfinished = await asyncio.wait(running, timeout=grace)
            for task in unfinished:
                task.cancel()


async def _decode(runtime: ServiceRuntime, spec: ConsumerSpec[M], msg: Msg) -> _Delivery[M] | None:
    """The message as its contract's model; a message without a valid one is dead-lettered."""
    if spec.skip is not None and spec.skip(msg):
        await msg.ack()
        runtime.metrics.consumed(spec.name, "skipped").inc()
        return None
    delivered = msg.metadata.num_delivered or 1
    model = spec.models.get(msg.subject)
    if model is None:
        await _dead_letter(runtime, spec.name, msg, f"no contract for subject {msg.subject}", 1)
        await msg.ack()
        return None
    try:
        event = model.model_validate_json(msg.data)
    except ValidationError as exc:
        await _dead_letter(runtime, spec.name, msg, f"invalid {model.__name__}: {exc}", delivered)
        await msg.ack()
        return None
    return _Delivery(msg, event, delivered)


@contextlib.contextmanager
def _handling(spec: ConsumerSpec[M], delivery: _Delivery[M]) -> Iterator[None]:
    """The trace span (continuing the publisher's trace) and log fields of one message."""
    event = delivery.event
    with (
        tracer(__name__).start_as_current_span(
            f"{spec.name} handle {type(event).__name__}",
            context=extract_context(delivery.msg.headers),
            kind=SpanKind.CONSUMER,
        ),
        log_context(
            run_id=getattr(event, "run_id", None),
            tenant_id=event.tenant_id,
            event_id=event.event_id,
        ),
    ):
        yield


async def handle_batch(runtime: ServiceRuntime, spec: ConsumerSpec[M], msgs: list[Msg]) -> None:
    """Handle ``msgs`` in stream order in one transaction; one by one if that fails."""
    deliveries = [d for msg in msgs if (d := await _decode(runtime, spec, msg)) is not None]
    if len(deliveries) <= 1:
        for delivery in deliveries:
            await handle_one(runtime, spec, delivery)
        return
    started = time.perf_counter()
    while True:
        try:
            outcomes = await _apply_batch(runtime, spec, deliveries)
        except Exception as exc:
            if await _outage(runtime, exc):
                if await _wait_out_outage(runtime, spec, [d.msg for d in deliveries]):
                    continue
                return  # stopping: unacked, so redelivered
            log.info(
                "batch failed; handling its messages one per transaction",
                exc_info=True,
                extra={"consumer": spec.name, "messages": len(deliveries)},
            )
            for delivery in deliveries:
                await handle_one(runtime, spec, delivery)
            return
        break
    for delivery in deliveries:
        await delivery.msg.ack()
    per_message = (time.perf_counter() - started) / len(deliveries)
    runtime.metrics.batch_messages(spec.name).observe(len(deliveries))
    for outcome in outcomes:
        runtime.metrics.consumed(spec.name, outcome).inc()
        runtime.metrics.handle_seconds(spec.name).observe(per_message)


async def _apply_batch(
    runtime: ServiceRuntime, spec: ConsumerSpec[M], deliveries: list[_Delivery[M]]
) -> list[str]:
    """The batch in one transaction; each message's outcome (handled or duplicate)."""
    outcomes: list[str] = []
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        fresh = await inbox.claim_many(
            uow.session, runtime.inbox_table, spec.name, (d.event.event_id for d in deliveries)
        )
        to_handle: list[_Delivery[M]] = []
        for delivery in deliveries:
            if delivery.event.event_id not in fresh:
                outcomes.append("duplicate")
                continue
            fresh.discard(delivery.event.event_id)  # the same event twice in one batch
            to_handle.append(delivery)
            outcomes.append("handled")
        if spec.batch_handler is not None:
            with (
                message_headers.carrying(
                    {d.event.event_id: d.msg.headers or {} for d in to_handle}
                ),
                tracer(__name__).start_as_current_span(
                    f"{spec.name} handle batch", attributes={"messages": len(to_handle)}
                ),
            ):
                await spec.batch_handler(uow, [d.event for d in to_handle])
        else:
            for delivery in to_handle:
                with _handling(spec, delivery):
                    await spec.handler(uow, delivery.event)
    return outcomes


async def handle_one(
    runtime: ServiceRuntime, spec: ConsumerSpec[M], delivery: _Delivery[M]
) -> None:
    """One message in its own transaction: retried with backoff, dead-lettered at the limit."""
    msg, delivered = delivery.msg, delivery.delivered
    started = time.perf_counter()
    with _handling(spec, delivery):
        # A slow handler (an executor running a job) keeps the message from being redelivered.
        keepalive = asyncio.create_task(_keep_in_progress([msg], spec.ack_wait_seconds / 3))
        try:
            while True:
                try:
                    outcome = await _apply_one(runtime, spec, delivery)
                except Exception as exc:
                    if not await _outage(runtime, exc):
                        raise
                    if await _wait_out_outage(runtime, spec, []):
                        continue  # the keepalive above holds the message meanwhile
                    return  # stopping: unacked, so redelivered
                break
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
            await msg.nak(delay=_retry_delay(delivered))
            return
        finally:
            keepalive.cancel()
        await msg.ack()
    runtime.metrics.consumed(spec.name, outcome).inc()
    runtime.metrics.handle_seconds(spec.name).observe(time.perf_counter() - started)


async def _apply_one(runtime: ServiceRuntime, spec: ConsumerSpec[M], delivery: _Delivery[M]) -> str:
    """The message in its own transaction: handled, or a duplicate of one handled before."""
    event = delivery.event
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        if not await inbox.claim(uow.session, runtime.inbox_table, spec.name, event.event_id):
            return "duplicate"
        with message_headers.carrying({event.event_id: delivery.msg.headers or {}}):
            await spec.handler(uow, event)
    return "handled"


async def _outage(runtime: ServiceRuntime, exc: Exception) -> bool:
    """Whether ``exc`` came from a dependency that is out of reach right now. One that says
    so while Postgres and NATS answer the probe counts as the message's own failure, so a
    message that always fails this way is still dead-lettered in the end."""
    return is_unavailable(exc) and not await runtime.dependencies_reachable()


async def _wait_out_outage(runtime: ServiceRuntime, spec: ConsumerSpec[M], msgs: list[Msg]) -> bool:
    """Wait until Postgres and NATS answer again, keeping ``msgs`` in progress meanwhile;
    False if the service stops first."""
    log.warning("a dependency is unreachable; waiting", extra={"consumer": spec.name})
    runtime.metrics.consumed(spec.name, "waited_for_outage").inc(max(1, len(msgs)))
    keepalive = asyncio.create_task(_keep_in_progress(msgs, spec.ack_wait_seconds / 3))
    try:
        attempt = 0
        while not runtime.stopping.is_set():
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    runtime.stopping.wait(), timeout=exponential_backoff(attempt, cap=5.0)
                )
            if await runtime.dependencies_reachable():
                log.info("dependencies reachable again", extra={"consumer": spec.name})
                return True
        return False
    finally:
        keepalive.cancel()


async def _keep_in_progress(msgs: list[Msg], every: float) -> None:
    """Tell JetStream the messages are being worked on, so it does not redeliver them."""
    while True:
        await asyncio.sleep(every)
        for msg in msgs:
            try:
                await msg.in_progress()
            except Exception:  # disconnected: JetStream redelivers after ack_wait at worst
                log.debug("could not keep a message in progress", exc_info=True)


def _retry_delay(delivered: int) -> float:
    return exponential_backoff(delivered, cap=30.0)


async def _dead_letter(
    runtime: ServiceRuntime, consumer: str, msg: Msg, reason: str, delivered: int
) -> None:
    payload = msg.data.decode("utf-8", errors="backslashreplace")
    record = DeadLetter(
        consumer=consumer,
        original_subject=msg.subject,
        reason=reason[:4000],
        payload=payload[:DEAD_LETTER_PAYLOAD_CHARS],
        truncated=len(payload) > DEAD_LETTER_PAYLOAD_CHARS or payload.encode() != msg.data,
        headers=dict(msg.headers or {}),
        delivery_count=delivered,
    )
    sequence = msg.metadata.sequence.stream
    await runtime.publish_now(
        OutgoingMessage(
            # Deterministic id: dead-lettering the same delivery twice publishes one record.
            id=uuid5(NAMESPACE_URL, f"deadletter/{consumer}/{sequence}/{msg.subject}"),
            subject=deadletter_subject(consumer),
            payload=record.model_dump_json().encode(),
            headers={"content-type": "application/json"},
        )
    )
    runtime.metrics.consumed(consumer, "dead_lettered").inc()
    log.warning(
        "message dead-lettered",
        extra={"consumer": consumer, "subject": msg.subject, "reason": reason[:500]},
    )
