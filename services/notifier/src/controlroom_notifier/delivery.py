"""Delivers scheduled callbacks: signed (Standard Webhooks), retried with backoff, logged."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import WebhookDelivered, WebhookFailed
from controlroom_notifier import store
from controlroom_notifier.settings import NotifierSettings
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.logs import log_context
from controlroom_runtime.outbox import Outbox
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

# A 4xx other than these means the receiver refuses this request for good.
RETRYABLE_CLIENT_ERRORS = {408, 409, 425, 429}


class DeliveryWorker:
    def __init__(
        self,
        settings: NotifierSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._signer = Webhook(settings.webhook_secret.get_secret_value())
        self._policy = CallbackPolicy(settings.callback_allowlist)
        self._wakeup = asyncio.Event()

    async def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds, follow_redirects=False
        ) as http:
            while not stopping.is_set():
                # Cleared before the pass, so a wake-up arriving during it is not lost.
                self._wakeup.clear()
                try:
                    handled = await self.deliver_due(http)
                except Exception:
                    log.warning("delivery pass failed", exc_info=True)
                    handled = 0
                if handled:
                    continue
                try:
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self._settings.delivery_poll_interval_seconds
                    )
                except TimeoutError:
                    pass

    async def deliver_due(self, http: httpx.AsyncClient) -> int:
        lease = timedelta(seconds=self._settings.webhook_timeout_seconds * 3)
        async with self._sessions.begin() as session:
            due = await store.lease_due(session, self._settings.delivery_concurrency, lease)
            secrets = await store.endpoint_secrets(
                session, {row.endpoint_id for row in due if row.endpoint_id is not None}
            )
        await asyncio.gather(*(self._deliver(http, row, secrets) for row in due))
        return len(due)

    def _signer_for(self, row: Any, secrets: dict[UUID, str]) -> Webhook | None:
        """Callbacks are signed with the service secret, endpoints with their own (None: gone)."""
        if row.endpoint_id is None:
            return self._signer
        secret = secrets.get(row.endpoint_id)
        return Webhook(secret) if secret is not None else None

    async def _deliver(self, http: httpx.AsyncClient, row: Any, secrets: dict[UUID, str]) -> None:
        with log_context(run_id=row.run_id, tenant_id=row.tenant_id, delivery_id=row.id):
            signer = self._signer_for(row, secrets)
            if signer is None:
                await self._record(row, None, "endpoint deleted", permanent=True)
                return
            body = json.dumps(row.payload, separators=(",", ":"))
            now = utc_now()
            headers = {
                "content-type": "application/json",
                "user-agent": "ControlRoom-Notifier/1.0",
                "webhook-id": str(row.id),
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(str(row.id), now, body),
            }
            status: int | None = None
            # Checked again at delivery: what a host name resolves to can change after submit.
            if refused := await self._policy.problem(row.url):
                await self._record(row, None, f"refused: {refused[1]}", permanent=True)
                return
            try:
                response = await http.post(row.url, content=body, headers=headers)
                status = response.status_code
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            await self._record(row, status, error)

    async def _record(
        self, row: Any, status: int | None, error: str | None, *, permanent: bool = False
    ) -> None:
        attempts: int = row.attempts
        async with unit_of_work(self._sessions, self._outbox) as uow:
            if error is None:
                await store.mark(
                    uow.session,
                    row.id,
                    status="delivered",
                    response_status=status,
                    delivered_at=utc_now(),
                    last_error=None,
                )
                await uow.emit(
                    WebhookDelivered(
                        tenant_id=row.tenant_id,
                        run_id=row.run_id,
                        delivery_id=row.id,
                        kind=row.kind,
                        endpoint_id=row.endpoint_id,
                        url=row.url,
                        status_code=status or 0,
                        attempts=attempts,
                    )
                )
                log.info("callback delivered", extra={"status_code": status, "attempts": attempts})
                return
            permanent = permanent or (
                status is not None and 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS
            )
            if permanent or attempts >= self._settings.webhook_max_attempts:
                await store.mark(
                    uow.session, row.id, status="failed", response_status=status, last_error=error
                )
                await uow.emit(
                    WebhookFailed(
                        tenant_id=row.tenant_id,
                        run_id=row.run_id,
                        delivery_id=row.id,
                        kind=row.kind,
                        endpoint_id=row.endpoint_id,
                        url=row.url,
                        error=error,
                        attempts=attempts,
                    )
                )
                log.warning(
                    "callback failed for good", extra={"error": error, "attempts": attempts}
                )
                return
            delay = exponential_backoff(attempts, cap=self._settings.webhook_max_backoff_seconds)
            await store.mark(
                uow.session,
                row.id,
                response_status=status,
                last_error=error,
                next_attempt_at=utc_now() + timedelta(seconds=delay),
            )
            log.info("callback will be retried", extra={"error": error, "retry_in_s": delay})
