"""Pipelined publishing to JetStream that no failed publish can wedge.

nats-py's ``publish_async`` takes a pending-ack slot before it writes and gives it back only
when the ack arrives: when the write itself raises (a payload over the server's
``max_payload``, a closed connection), the slot is never given back, and after enough such
failures every later publish stalls. This publisher keeps its own acks on one reply
subscription, so a write that fails frees its slot at once; and it refuses, before writing, a
message the server could never take (the server closes the connection of a client that sends
one), naming the reason, so the outbox can set it aside instead of retrying it forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.aio.msg import Msg

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.subscription import Subscription

    from controlroom_runtime.outbox import OutgoingMessage

log = logging.getLogger(__name__)

HEADER_PREAMBLE = len(b"NATS/1.0\r\n") + len(b"\r\n")


@dataclass(frozen=True)
class Refused:
    """A message the broker can never store; ``reason`` says why."""

    reason: str


PublishResult = bool | Refused
"""Per message: stored (``True``), not stored this time (``False``: try again later), or
``Refused`` for good."""


def wire_size(message: OutgoingMessage) -> int:
    """Bytes the server counts against ``max_payload``: the headers as sent, and the body."""
    headers = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in message.headers.items())
    return len(message.payload) + (HEADER_PREAMBLE + headers if message.headers else 0)


def too_large(message: OutgoingMessage, max_payload: int) -> Refused | None:
    size = wire_size(message)
    if size <= max_payload:
        return None
    return Refused(
        f"{size} bytes ({len(message.payload)} of body) exceed the broker's max_payload of "
        f"{max_payload} bytes"
    )


class JetStreamPublisher:
    """Publishes messages to JetStream pipelined: every message is written before any ack is
    awaited (one connection keeps their order), with at most ``max_pending`` awaiting acks."""

    def __init__(self, client: Client, *, max_pending: int = 4096, ack_timeout: float = 5.0):
        self._client = client
        self._ack_timeout = ack_timeout
        self._slots = asyncio.Semaphore(max_pending)
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._next = 0

    async def start(self) -> None:
        """Subscribe to the acks (the subscription survives reconnects)."""
        self._prefix = f"{self._client.new_inbox()}."
        self._subscription = await self._client.subscribe(f"{self._prefix}*", cb=self._on_ack)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        for future in self._waiting.values():
            future.cancel()

    @property
    def pending(self) -> int:
        """Messages written and still awaiting their ack."""
        return len(self._waiting)

    async def __call__(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        if self._subscription is None:
            raise RuntimeError("JetStreamPublisher.start() was not awaited")
        max_payload = self._client.max_payload
        results: list[PublishResult | asyncio.Future[bool]] = []
        writing = True
        for message in messages:
            refused = too_large(message, max_payload)
            if refused is not None:
                results.append(refused)
            elif not writing:
                results.append(False)
            else:
                ack = await self._write(message)
                writing = ack is not None
                results.append(ack if ack is not None else False)
        acks = [r for r in results if isinstance(r, asyncio.Future)]
        if acks:
            _done, late = await asyncio.wait(acks, timeout=self._ack_timeout)
            for ack in late:
                ack.cancel()  # frees its slot and forgets it (``_settled``)
        return [_result(r) for r in results]

    async def _write(self, message: OutgoingMessage) -> asyncio.Future[bool] | None:
        """Write one message; its ack's future, or None when it could not be written."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self._ack_timeout)
        except TimeoutError:
            log.warning("JetStream publish stalled: too many messages awaiting acks")
            return None
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        future.add_done_callback(lambda _f: self._settled(token))
        try:
            await self._client.publish(
                message.subject,
                message.payload,
                reply=self._prefix + token,
                headers=message.headers or None,
            )
        except Exception as exc:
            # Disconnected, or closed: this one and those after it wait for the next pass.
            log.warning("publishing to JetStream failed", extra={"error": repr(exc)})
            self._settled(token)  # at once, not when the loop runs the done callback
            future.cancel()
            return None
        return future

    def _settled(self, token: str) -> None:
        if self._waiting.pop(token, None) is not None:
            self._slots.release()

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject[len(self._prefix) :])
        if future is None or future.done():
            return
        future.set_result(_stored(msg))


def _stored(msg: Msg) -> bool:
    """Whether a JetStream publish reply says the stream stored the message."""
    if msg.headers and msg.headers.get("Status") == "503":
        return False  # no stream listens on the subject
    try:
        reply = json.loads(msg.data)
    except ValueError:
        return False
    if not isinstance(reply, dict) or "error" in reply:
        if isinstance(reply, dict):
            log.warning("JetStream refused a publish", extra={"error": reply.get("error")})
        return False
    return "stream" in reply


def _result(result: PublishResult | asyncio.Future[bool]) -> PublishResult:
    if not isinstance(result, asyncio.Future):
        return result
    return result.done() and not result.cancelled() and result.result()
