"""Admin view of a tenant's deliveries, and redelivery under the same webhook-id.

Redelivery follows Svix and Stripe: any delivery may be sent again, a delivered one included
(the receiver dedupes by ``webhook-id``). It starts over: due now, attempts counted from zero,
signed afresh (a Standard Webhooks timestamp is the time of sending). One being attempted at
this moment is left to that attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.management import (
    ListWebhookDeliveries,
    RedeliverWebhookDeliveries,
    RedeliverWebhookDelivery,
    RedeliveryCount,
    WebhookDeliveryKind,
    WebhookDeliveryList,
    WebhookDeliveryStatus,
    WebhookDeliveryView,
)
from controlroom_notifier import delivery_store
from controlroom_runtime.logs import log_context
from controlroom_runtime.rpc import RpcFailure

log = logging.getLogger(__name__)


def delivery_view(row: sa.Row[Any]) -> WebhookDeliveryView:
    return WebhookDeliveryView(
        id=row.id,
        run_id=row.run_id,
        kind=cast(WebhookDeliveryKind, row.kind),
        endpoint_id=row.endpoint_id,
        url=row.url,
        status=cast(WebhookDeliveryStatus, row.status),
        attempts=row.attempts,
        status_code=row.response_status,
        latency_ms=row.latency_ms,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        delivered_at=row.delivered_at,
        redelivered_at=row.redelivered_at,
        created_at=row.created_at,
    )


class DeliveryAdmin:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], wake: Callable[[], Awaitable[None]]
    ) -> None:
        self._sessions = sessions
        self._wake = wake

    async def list(self, request: ListWebhookDeliveries) -> WebhookDeliveryList:
        before = (request.after.created_at, request.after.id) if request.after else None
        async with self._sessions() as session:
            rows = await delivery_store.list_deliveries(
                session,
                request.tenant_id,
                status=request.status,
                run_id=request.run_id,
                limit=request.limit + 1,
                before=before,
            )
        return WebhookDeliveryList(
            items=[delivery_view(r) for r in rows[: request.limit]], more=len(rows) > request.limit
        )

    async def redeliver(self, request: RedeliverWebhookDelivery) -> WebhookDeliveryView:
        async with self._sessions.begin() as session:
            row = await delivery_store.redeliver(session, request.tenant_id, request.delivery_id)
        if row is None:
            raise RpcFailure("not_found", f"no webhook delivery {request.delivery_id}")
        await self._wake()
        with log_context(tenant_id=request.tenant_id, run_id=row.run_id, delivery_id=row.id):
            log.info("delivery redelivered", extra={"requested_by": request.requested_by})
        return delivery_view(row)

    async def redeliver_all(self, request: RedeliverWebhookDeliveries) -> RedeliveryCount:
        async with self._sessions.begin() as session:
            count = await delivery_store.redeliver_failed(
                session, request.tenant_id, request.run_id
            )
        if count:
            await self._wake()
        with log_context(tenant_id=request.tenant_id):
            log.info(
                "failed deliveries redelivered",
                extra={"count": count, "requested_by": request.requested_by},
            )
        return RedeliveryCount(redelivered=count)
