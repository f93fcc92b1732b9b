"""What ``make bench`` watches on NATS: when each run's messages were seen, and how many of
one subject have arrived.

Unlike ``tap.EventTap`` these keep a receive time (``time.monotonic()``) per message, and the
counter decodes nothing, so watching ten thousand dispatches costs the client little.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg


class Counter:
    """Counts messages on one subject and keeps the receive time of each."""

    def __init__(self, client: Client, subject: str) -> None:
        self._client = client
        self.subject = subject
        self.times: list[float] = []
        self._wanted: list[tuple[int, asyncio.Future[float]]] = []

    async def start(self) -> None:
        await self._client.subscribe(self.subject, cb=self._on_message)
        await self._client.flush()

    async def _on_message(self, _msg: Msg) -> None:
        now = time.monotonic()
        self.times.append(now)
        if self._wanted:
            reached = [(n, f) for n, f in self._wanted if len(self.times) >= n]
            for n, future in reached:
                self._wanted.remove((n, future))
                if not future.done():
                    future.set_result(self.times[n - 1])

    @property
    def count(self) -> int:
        return len(self.times)

    async def reached(self, n: int, timeout: float) -> float:
        """When the n-th message arrived (waiting for it, up to ``timeout`` seconds)."""
        if len(self.times) >= n:
            return self.times[n - 1]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._wanted.append((n, future))
        return await asyncio.wait_for(future, timeout)


class Timeline:
    """When each run's messages were first seen, by subject: ``at(subject, run_id)``.

    ``on`` registers a callback for a subject (the bench playing an executor, say); it runs in
    the subscription's callback, so it must be quick (start a task for anything slow)."""

    def __init__(self, client: Client, subject: str = "controlroom.>") -> None:
        self._client = client
        self._subject = subject
        self.seen: dict[str, dict[str, float]] = defaultdict(dict)
        self.last: dict[str, dict[str, Any]] = {}
        """The latest message of each subject, decoded."""
        self._waiters: dict[tuple[str, str], asyncio.Future[float]] = {}
        self._callbacks: dict[str, Callable[[dict[str, Any], float], None]] = {}

    async def start(self) -> None:
        await self._client.subscribe(self._subject, cb=self._on_message)
        await self._client.flush()

    def on(self, subject: str, callback: Callable[[dict[str, Any], float], None]) -> None:
        self._callbacks[subject] = callback

    async def _on_message(self, msg: Msg) -> None:
        now = time.monotonic()
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        self.last[msg.subject] = data
        run_id = str(data.get("run_id") or data.get("executor_id") or "")
        runs = self.seen[msg.subject]
        if run_id not in runs:
            runs[run_id] = now
        waiter = self._waiters.pop((msg.subject, run_id), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)
        callback = self._callbacks.get(msg.subject)
        if callback is not None:
            callback(data, now)

    def at(self, subject: str, run_id: object) -> float | None:
        return self.seen[subject].get(str(run_id))

    async def wait(self, subject: str, run_id: object, timeout: float) -> float:
        """When ``subject`` was first seen for ``run_id`` (an executor id for heartbeats)."""
        key = (subject, str(run_id))
        if (seen := self.seen[subject].get(key[1])) is not None:
            return seen
        future = self._waiters.get(key)
        if future is None:
            future = self._waiters[key] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    def forget(self, subject: str, run_id: object) -> None:
        """Forget when ``subject`` was seen for ``run_id``, to wait for its next one."""
        self.seen[subject].pop(str(run_id), None)
