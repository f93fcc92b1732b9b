"""The tenant's webhook deliveries (admin): what was sent where, how it went, and redelivery.

The notifier owns them. A redelivery keeps the delivery's id, which every attempt sends as
the ``webhook-id`` header, so receivers can drop a duplicate. As Svix and Stripe allow, a
delivered one may be redelivered too; only failed ones are redelivered in bulk.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from controlroom_contracts.management import (
    ListWebhookDeliveries,
    RedeliverWebhookDeliveries,
    RedeliverWebhookDelivery,
    RedeliveryCount,
    WebhookDeliveryList,
    WebhookDeliveryPage,
    WebhookDeliveryStatus,
    WebhookDeliveryView,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.pagination import keyset_after, keyset_next

SERVICE = "notifier"


async def list_deliveries(
    gateway: Gateway,
    principal: Principal,
    *,
    status: WebhookDeliveryStatus | None,
    run_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> WebhookDeliveryPage:
    """The tenant's deliveries, newest first, with their attempts."""
    request = ListWebhookDeliveries(
        tenant_id=principal.tenant_id,
        status=status,
        run_id=run_id,
        limit=limit,
        after=keyset_after(cursor),
    )
    found = await gateway.ask(request, WebhookDeliveryList, service=SERVICE)
    return WebhookDeliveryPage(items=found.items, next_cursor=keyset_next(found.items, found.more))


async def redeliver_failed(
    gateway: Gateway, principal: Principal, *, status: Literal["failed"], run_id: UUID | None
) -> RedeliveryCount:
    """Redeliver every failed delivery of the tenant, or of one run."""
    request = RedeliverWebhookDeliveries(
        tenant_id=principal.tenant_id,
        status=status,
        run_id=run_id,
        requested_by=principal.subject,
    )
    return await gateway.ask(request, RedeliveryCount, service=SERVICE)


async def redeliver_one(
    gateway: Gateway, principal: Principal, delivery_id: UUID
) -> WebhookDeliveryView:
    """Redeliver one delivery, failed or delivered, under the same webhook-id."""
    request = RedeliverWebhookDelivery(
        tenant_id=principal.tenant_id, delivery_id=delivery_id, requested_by=principal.subject
    )
    return await gateway.ask(request, WebhookDeliveryView, service=SERVICE)
