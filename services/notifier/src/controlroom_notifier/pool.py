"""The delivery worker pool: a fixed number of deliveries in flight, each on its own.

A delivery that hangs holds one worker until its deadline, never the others: a worker that
finishes takes the next due delivery at once. No tenant has more than its share of workers,
so one tenant's slow receivers never delay another tenant's deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_notifier import delivery_store, store
from controlroom_notifier.delivery import Deliverer
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.webhook_http import webhook_client

log = logging.getLogger(__name__)

# Past its deadline a delivery still writes its outcome; its lease outlasts both.
LEASE_MARGIN_SECONDS = 30.0


class DeliveryPool:
    def __init__(
        self,
        settings: NotifierSettings,
        sessions: async_sessionmaker[AsyncSession],
        deliverer: Deliverer,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._deliverer = deliverer
        self._size = settings.delivery_concurrency
        self._per_tenant = min(settings.delivery_tenant_concurrency, self._size)
        self._lease = timedelta(seconds=settings.webhook_deadline_seconds + LEASE_MARGIN_SECONDS)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._per_tenant_running: Counter[str] = Counter()

    async def wake(self) -> None:
        """Something became due (a new delivery, a redelivery): look now, not at the next poll."""
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        async with webhook_client(self._settings) as http:
            try:
                while not stopping.is_set():
                    # Cleared before leasing, so a wake-up arriving meanwhile is not lost.
                    self._wakeup.clear()
                    free = self._size - len(self._running)
                    started = await self._start_due(http, free) if free > 0 else 0
                    if started and started == free:
                        continue  # every worker got one: more may be due
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wakeup.wait(),
                            timeout=self._settings.delivery_poll_interval_seconds,
                        )
                # Stopping: what is in flight may finish within its deadline.
                if self._running:
                    await asyncio.wait(
                        set(self._running), timeout=self._settings.webhook_deadline_seconds
                    )
            finally:
                # Cancelled ones are attempted again once their lease runs out.
                for task in set(self._running):
                    task.cancel()
                await asyncio.gather(*self._running, return_exceptions=True)

    async def _start_due(self, http: httpx.AsyncClient, free: int) -> int:
        try:
            async with self._sessions.begin() as session:
                due = await delivery_store.lease_due(
                    session,
                    free,
                    self._lease,
                    per_tenant=self._per_tenant,
                    in_flight=self._per_tenant_running,
                )
                secrets = await store.endpoint_secrets(
                    session, {row.endpoint_id for row in due if row.endpoint_id is not None}
                )
        except Exception:
            log.warning("leasing due deliveries failed", exc_info=True)
            return 0
        for row in due:
            secret = secrets.get(row.endpoint_id) if row.endpoint_id is not None else None
            self._per_tenant_running[row.tenant_id] += 1
            task = asyncio.create_task(self._deliver(http, row, secret))
            self._running.add(task)
            task.add_done_callback(self._finished(row.tenant_id))
        return len(due)

    def _finished(self, tenant_id: str) -> Callable[[asyncio.Task[None]], None]:
        def free_the_worker(task: asyncio.Task[None]) -> None:
            self._running.discard(task)
            self._per_tenant_running[tenant_id] -= 1
            if self._per_tenant_running[tenant_id] <= 0:
                del self._per_tenant_running[tenant_id]
            self._wakeup.set()

        return free_the_worker

    async def _deliver(self, http: httpx.AsyncClient, row: Any, secret: str | None) -> None:
        try:
            await self._deliverer.deliver(http, row, secret)
        except Exception:
            # Its outcome is not recorded: the lease runs out and it is attempted again.
            log.warning("delivery crashed", exc_info=True, extra={"delivery_id": str(row.id)})
