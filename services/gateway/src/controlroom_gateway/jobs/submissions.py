"""Group commit for submissions: the runs accepted at about the same time share one transaction.

Each accepted job is a read-model row and an outbox row. Written one transaction per request,
a burst of submissions spends most of its time on BEGIN/COMMIT round trips and per-statement
overhead. Here requests hand their run to a writer and wait; a writer takes everything queued
so far, writes it with one statement (one round trip, see ``submitted_runs.record_submissions``),
answers every waiting request and moves on to the next batch while the events are published
in the background. Idle, a batch is one run and nothing waits longer than it did before; under
load the batches grow by themselves. A request returns only after its commit, so an accepted
run is never lost (the outbox relay publishes what a crash left).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from controlroom_contracts.events import JobSubmitted
from controlroom_gateway.errors import UpstreamUnavailable
from controlroom_gateway.read_model import submitted_runs
from controlroom_runtime.outbox import Outbox, OutgoingMessage, outgoing

log = logging.getLogger(__name__)

ORIGIN_HEADER = "Controlroom-Origin"
"""Marks a JobSubmitted whose run the gateway already wrote to its read model."""
GATEWAY_ORIGIN = "gateway"


def submission_message(event: JobSubmitted) -> OutgoingMessage:
    message = outgoing(event, message_id=event.event_id, subject=event.subject)
    message.headers[ORIGIN_HEADER] = GATEWAY_ORIGIN
    return message


@dataclass
class _Queued:
    event: JobSubmitted
    message: OutgoingMessage
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SubmissionWriter:
    def __init__(self, *, writers: int = 2, max_batch: int = 256) -> None:
        self._writers = writers
        self._max_batch = max_batch
        self._queue: list[_Queued] = []
        self._ready = asyncio.Condition()
        self._engine: AsyncEngine | None = None
        self._outbox: Outbox | None = None
        self._stopped = False

    def bind(self, autocommit_engine: AsyncEngine, outbox: Outbox) -> None:
        """``autocommit_engine``: each statement is its own transaction, with no BEGIN/COMMIT
        round trips around it."""
        self._engine, self._outbox = autocommit_engine, outbox

    async def write(self, event: JobSubmitted, message: OutgoingMessage) -> None:
        """Return once the run and its JobSubmitted (``message``, its ``submission_message``)
        are committed (published soon after)."""
        if self._stopped:
            raise UpstreamUnavailable("the gateway is stopping")
        queued = _Queued(event, message)
        async with self._ready:
            self._queue.append(queued)
            self._ready.notify()
        await queued.done

    async def run(self, stopping: asyncio.Event) -> None:
        """The writers, for the life of the service (what is queued before they start waits)."""
        writers = [asyncio.create_task(self._writer()) for _ in range(self._writers)]
        try:
            await stopping.wait()
        finally:
            self._stopped = True
            for writer in writers:
                writer.cancel()
            for writer in writers:
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            for queued in self._queue:
                if not queued.done.done():
                    queued.done.set_exception(UpstreamUnavailable("the gateway is stopping"))
            self._queue.clear()
            if self._outbox is not None:  # committed already; what is cut off the relay sends
                await self._outbox.finish_publishing()

    async def _writer(self) -> None:
        while True:
            async with self._ready:
                await self._ready.wait_for(lambda: bool(self._queue))
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for queued in batch:
                    if not queued.done.done():
                        queued.done.set_exception(UpstreamUnavailable("the gateway is stopping"))
                raise
            except Exception as exc:
                log.warning("writing a batch of submissions failed", exc_info=True)
                for queued in batch:
                    if not queued.done.done():
                        queued.done.set_exception(
                            UpstreamUnavailable(
                                f"the run could not be recorded: {type(exc).__name__}"
                            )
                        )

    async def _write(self, batch: list[_Queued]) -> None:
        assert self._engine is not None and self._outbox is not None, "bind() first"
        messages = [q.message for q in batch]
        async with self._engine.connect() as conn:
            await submitted_runs.record_submissions(conn, [q.event for q in batch], messages)
        for queued in batch:
            queued.done.set_result(None)
        # The runs are committed, and what is not published now the relay publishes later.
        # The events are of different runs, so their order does not matter, and the writer
        # need not wait for their acks before it takes the next batch.
        self._outbox.publish_soon(messages, independent=True)
        log.debug("submissions written", extra={"count": len(batch)})
