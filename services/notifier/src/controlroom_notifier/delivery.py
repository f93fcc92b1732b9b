"""One delivery attempt: vet the URL, sign (Standard Webhooks), POST within a deadline, and
record the outcome (delivered, retried with backoff, or failed and kept)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import WebhookDelivered, WebhookFailed
from controlroom_notifier import delivery_store
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.webhook_http import post_pinned
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.callback_policy import CallbackPolicy, Refused
from controlroom_runtime.logs import log_context
from controlroom_runtime.outbox import Outbox
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

# A 4xx other than these means the receiver refuses this request for good.
RETRYABLE_CLIENT_ERRORS = {408, 409, 425, 429}


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    permanent: bool = False


class Deliverer:
    def __init__(
        self,
        settings: NotifierSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        policy: CallbackPolicy,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._signer = Webhook(settings.webhook_secret.get_secret_value())
        self._policy = policy

    async def deliver(self, http: httpx.AsyncClient, row: Any, endpoint_secret: str | None) -> None:
        """Attempt the leased delivery ``row`` once and record what happened.

        ``endpoint_secret`` signs a tenant endpoint's delivery (None: the endpoint is gone);
        a job's callbacks are signed with the service secret."""
        with log_context(run_id=row.run_id, tenant_id=row.tenant_id, delivery_id=row.id):
            started = time.monotonic()
            if row.endpoint_id is None:
                outcome = await self._attempt(http, row, self._signer)
            elif endpoint_secret is None:
                outcome = Outcome(None, "endpoint deleted", permanent=True)
            else:
                outcome = await self._attempt(http, row, Webhook(endpoint_secret))
            await self._record(row, outcome, round((time.monotonic() - started) * 1000))

    async def _attempt(self, http: httpx.AsyncClient, row: Any, signer: Webhook) -> Outcome:
        seconds = self._settings.webhook_deadline_seconds
        # One deadline for the whole attempt, not per read: a receiver that trickles its
        # answer a byte at a time is cut off too.
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            return await self._post(http, row, signer, deadline)
        except TimeoutError:
            return Outcome(None, f"no answer within the {seconds:g} s deadline")

    async def _post(
        self, http: httpx.AsyncClient, row: Any, signer: Webhook, deadline: float
    ) -> Outcome:
        # Checked again at delivery (what a host name resolves to can change after submit),
        # and the request goes to the addresses checked now.
        async with asyncio.timeout_at(deadline):
            verdict = await self._policy.vet(row.url)
        if isinstance(verdict, Refused):
            # A name that does not resolve now may again later; anything else is for good.
            permanent = verdict.code != "callback.unresolvable"
            return Outcome(None, f"refused: {verdict.message}", permanent=permanent)
        body = json.dumps(row.payload, separators=(",", ":"))
        now = utc_now()
        headers = {
            "content-type": "application/json",
            "user-agent": "ControlRoom-Notifier/1.0",
            # The delivery's id, the same across retries and redeliveries: receivers dedupe.
            "webhook-id": str(row.id),
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(str(row.id), now, body),
        }
        try:
            answer = await post_pinned(
                http,
                verdict,
                body,
                headers,
                max_response_bytes=self._settings.webhook_max_response_bytes,
                deadline=deadline,
            )
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        status = answer.status
        if 200 <= status < 300:
            return Outcome(status, None)
        permanent = 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS
        return Outcome(status, f"HTTP {status}{_excerpt(answer.body)}", permanent)

    async def _record(self, row: Any, outcome: Outcome, latency_ms: int) -> None:
        attempts: int = row.attempts
        status, error = outcome.status, outcome.error
        attempt = {
            "response_status": status,
            "latency_ms": latency_ms,
            "last_attempt_at": utc_now(),
        }
        async with unit_of_work(self._sessions, self._outbox) as uow:
            if error is None:
                await delivery_store.mark(
                    uow.session,
                    row.id,
                    status="delivered",
                    delivered_at=utc_now(),
                    last_error=None,
                    **attempt,
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
            if outcome.permanent or attempts >= self._settings.webhook_max_attempts:
                # Kept, never dropped: an admin lists it and may redeliver it.
                await delivery_store.mark(
                    uow.session, row.id, status="failed", last_error=error, **attempt
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
            await delivery_store.mark(
                uow.session,
                row.id,
                last_error=error,
                next_attempt_at=utc_now() + timedelta(seconds=delay),
                **attempt,
            )
            log.info("callback will be retried", extra={"error": error, "retry_in_s": delay})


def _excerpt(body: bytes) -> str:
    """The start of a refusal's body, for the admin reading why (NUL cannot be stored)."""
    text = " ".join(body[:300].decode("utf-8", "replace").replace("\x00", "").split())
    return f": {text[:200]}" if text else ""
