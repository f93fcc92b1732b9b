"""Receivers that hang, trickle or never stop talking: each costs one worker until its deadline,
never another tenant's delivery.

Real nats-server and Postgres; the receivers are real TCP servers on loopback that speak just
enough HTTP/1.1 to misbehave in one way each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controlroom_contracts import subjects
from controlroom_devstack.infra import free_port
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap, publish_finished_run
from controlroom_devstack.waiting import until
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import NotifierSettings

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawReceiver:
    """Reads each request whole, then answers with ``behaviour``; counts open connections."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.port = free_port()
        self.requests: list[bytes] = []
        self.open = 0
        self.most_open = 0
        self._behaviour = behaviour
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in set(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            self.requests.append(head + await reader.readexactly(length))
            with contextlib.suppress(ConnectionError):
                await self._behaviour(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()
            self._handlers.discard(task)


async def hang(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """Never answer; return once the client gives up (closes its end)."""
    await reader.read()


async def trickle_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then a header line now and then, forever: each read gets a byte in time."""
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while not reader.at_eof():
        await writer.drain()
        writer.write(b"X-Wait: 1\r\n")
        await asyncio.sleep(0.1)


async def endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200, then a chunked body that never ends (16 KiB every few milliseconds)."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    while not reader.at_eof():
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.005)


async def trickle_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200 promising a megabyte, then one byte now and then."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while not reader.at_eof():
        await writer.drain()
        writer.write(b"x")
        await asyncio.sleep(0.1)


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def raw_receiver(behaviour: Behaviour) -> AsyncIterator[RawReceiver]:
    server = RawReceiver(behaviour)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _settings(nats_url: str, database_url: str, **overrides: Any) -> NotifierSettings:
    return NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        delivery_poll_interval_seconds=0.2,
        **overrides,
    )


async def test_a_hanging_receiver_holds_one_worker_while_another_tenant_is_delivered(
    nats_url: str, database_url: str, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    settings = _settings(
        nats_url, database_url, delivery_concurrency=2, delivery_tenant_concurrency=1
    )
    async with raw_receiver(hang) as slow, running(create_app(settings)):
        for _ in range(3):
            await publish_finished_run(event_tap, "slow-tenant", slow.url("slow"))
        await until(lambda: len(slow.requests) >= 1, what="the slow receiver holding a request")

        fast_run = await publish_finished_run(event_tap, "fast-tenant", receiver.url("fast"))
        await receiver.wait_for(lambda r: r.path == "/fast")
        await event_tap.wait_for(subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == fast_run)
        # Delivered while the slow receiver still holds its request, and the slow tenant's
        # other two deliveries wait for its one worker instead of taking the second.
        assert slow.open == 1, "the hanging request was cut off before the other was delivered"
        assert len(slow.requests) == 1 and slow.most_open == 1


async def test_a_receiver_trickling_its_headers_is_cut_off_at_the_deadline(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    # Each read gets a byte well within the 10 s read timeout: only a deadline ends it.
    settings = _settings(
        nats_url, database_url, webhook_deadline_seconds=1.0, webhook_max_attempts=1
    )
    async with raw_receiver(trickle_headers) as slow, running(create_app(settings)):
        run_id = await publish_finished_run(event_tap, "t1", slow.url("slow"))
        failed = await event_tap.wait_for(subjects.WEBHOOK_FAILED, lambda d: d["run_id"] == run_id)
        assert "deadline" in failed.data["error"] and failed.data["attempts"] == 1
        await until(lambda: slow.open == 0, what="the notifier closing the connection")


@pytest.mark.parametrize("behaviour", [endless_body, trickle_body], ids=["endless", "trickle"])
async def test_a_200_with_an_endless_or_trickled_body_is_delivered_after_a_capped_read(
    nats_url: str, database_url: str, event_tap: EventTap, behaviour: Behaviour
) -> None:
    settings = _settings(nats_url, database_url, webhook_deadline_seconds=2.0)
    async with raw_receiver(behaviour) as talker, running(create_app(settings)):
        run_id = await publish_finished_run(event_tap, "t1", talker.url("talk"))
        delivered = await event_tap.wait_for(
            subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == run_id
        )
        assert delivered.data["status_code"] == 200 and delivered.data["attempts"] == 1
        await until(lambda: talker.open == 0, what="the notifier closing the connection")
