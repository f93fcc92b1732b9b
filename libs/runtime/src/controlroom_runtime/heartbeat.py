"""Periodic executor heartbeats on plain NATS, and the roll call that asks for one at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from faststream.nats import NatsBroker
from nats.aio.msg import Msg

from controlroom_contracts import subjects
from controlroom_contracts.executors import ExecutorHeartbeat
from controlroom_runtime.subscriptions import settle
from controlroom_runtime.waiting import first_of

log = logging.getLogger(__name__)


async def announce(
    broker: NatsBroker,
    beat: Callable[[], ExecutorHeartbeat],
    interval: float,
    stopping: asyncio.Event,
) -> None:
    """Publish ``beat()`` every ``interval`` seconds, and at once on a roll call, until the
    service stops."""
    called = asyncio.Event()

    async def on_roll_call(_msg: Msg) -> None:
        called.set()

    roll_call = await broker.connection.subscribe(subjects.EXECUTOR_ROLL_CALL, cb=on_roll_call)
    await settle(broker.connection)  # a roll call from now on is heard
    try:
        while not stopping.is_set():
            called.clear()
            try:
                message = beat()
                await broker.connection.publish(message.subject, message.model_dump_json().encode())
            except Exception:
                log.warning("heartbeat not published", exc_info=True)
            await first_of(stopping, called, timeout=interval)
    finally:
        with contextlib.suppress(Exception):
            await roll_call.unsubscribe()


async def call_the_roll(broker: NatsBroker) -> None:
    """Ask every executor for its heartbeat now (a listener calls this once subscribed)."""
    await broker.connection.publish(subjects.EXECUTOR_ROLL_CALL, b"")
