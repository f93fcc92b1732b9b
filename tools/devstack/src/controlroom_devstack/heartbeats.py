"""A stand-in executor's heartbeats, for tests and benchmarks of the scheduler alone.

``StandInExecutor`` is a test double of one thing only: the liveness signal an executor
sends (capacity, and the attempts it holds), every interval and at once on a roll call. It
runs no job; the test publishes the executor's attempt reports itself. It speaks the same
subjects and contract as a real executor (``ExecutorHeartbeat``), so the scheduler cannot
tell the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from uuid import UUID

import nats
from nats.aio.client import Client

from controlroom_contracts import subjects
from controlroom_contracts.executors import ExecutorHeartbeat, HeldAttempt
from controlroom_runtime.subscriptions import settle


class StandInExecutor:
    def __init__(
        self,
        url: str,
        *,
        executor_id: str = "stand-in",
        kind: str = "docker",
        capacity: int = 100,
        interval: float = 0.5,
    ) -> None:
        self._url = url
        self.executor_id = executor_id
        self.kind = kind
        self.capacity = capacity
        self.interval = interval
        self.held: dict[tuple[UUID, int], HeldAttempt] = {}
        self.silent = False
        """While True it sends nothing, as a killed executor would."""
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._started_at = datetime.now(UTC)
        self._called = asyncio.Event()

    def hold(self, tenant_id: str, run_id: UUID, attempt: int) -> None:
        self.held[(run_id, attempt)] = HeldAttempt(
            tenant_id=tenant_id, run_id=run_id, attempt=attempt
        )

    def release(self, run_id: UUID, attempt: int) -> None:
        self.held.pop((run_id, attempt), None)

    def beat(self) -> ExecutorHeartbeat:
        return ExecutorHeartbeat(
            executor_id=self.executor_id,
            kind=self.kind,
            capacity=self.capacity,
            running=len(self.held),
            ready=True,
            started_at=self._started_at,
            attempts=list(self.held.values()),
        )

    async def send(self) -> None:
        assert self._client is not None
        await self._client.publish(
            subjects.EXECUTOR_HEARTBEAT, self.beat().model_dump_json().encode()
        )

    async def start(self) -> None:
        self._client = await nats.connect(self._url)

        async def on_roll_call(_msg: object) -> None:
            self._called.set()

        await self._client.subscribe(subjects.EXECUTOR_ROLL_CALL, cb=on_roll_call)
        await settle(self._client)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self._called.clear()
            if not self.silent:
                await self.send()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._called.wait(), self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.close()
