"""Periodic executor heartbeats on plain NATS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from faststream.nats import NatsBroker

from controlroom_contracts.executors import ExecutorHeartbeat

log = logging.getLogger(__name__)


async def announce(
    broker: NatsBroker,
    beat: Callable[[], ExecutorHeartbeat],
    interval: float,
    stopping: asyncio.Event,
) -> None:
    """Publish ``beat()`` every ``interval`` seconds until the service stops."""
    while not stopping.is_set():
        try:
            message = beat()
            await broker.publish(message.model_dump_json(), message.subject)
        except Exception:
            log.warning("heartbeat not published", exc_info=True)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except TimeoutError:
            pass
