"""The tenant's webhook deliveries (admin): what was sent where, how it went, and redelivery.

The notifier owns them. A redelivery keeps the delivery's id, which every attempt sends as
the ``webhook-id`` header, so receivers can drop a duplicate. As Svix and Stripe allow, a
delivered one may be redelivered too; only failed ones are redelivered in bulk.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status

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
from controlroom_gateway.deps import AskerDep, CurrentAdmin
from controlroom_gateway.errors import PROBLEM
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.pagination import keyset_after, keyset_next

router = APIRouter(
    prefix="/api/v1/webhook-deliveries",
    tags=["webhook deliveries"],
    route_class=InteroperableJsonRoute,
)

SERVICE = "notifier"

RunFilter = Annotated[UUID | None, Query(description="Only the deliveries about this run")]


@router.get(
    "",
    response_model=WebhookDeliveryPage,
    summary="The tenant's webhook deliveries, newest first, with their attempts (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_deliveries(
    principal: CurrentAdmin,
    ask: AskerDep,
    status_filter: Annotated[
        WebhookDeliveryStatus | None, Query(alias="status", description="Only in this status")
    ] = None,
    run_id: RunFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookDeliveryPage:
    request = ListWebhookDeliveries(
        tenant_id=principal.tenant_id,
        status=status_filter,
        run_id=run_id,
        limit=limit,
        after=keyset_after(cursor),
    )
    found = await ask(request, WebhookDeliveryList, service=SERVICE)
    return WebhookDeliveryPage(items=found.items, next_cursor=keyset_next(found.items, found.more))


@router.post(
    "/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RedeliveryCount,
    summary="Redeliver every failed delivery of the tenant, or of one run (admin)",
    description="Each starts over under its own id (the `webhook-id` header): due now, its "
    "attempts counted from zero. `status` must be `failed`.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def redeliver_failed(
    principal: CurrentAdmin,
    ask: AskerDep,
    status_filter: Annotated[
        Literal["failed"], Query(alias="status", description="Which deliveries: `failed`")
    ],
    run_id: RunFilter = None,
) -> RedeliveryCount:
    request = RedeliverWebhookDeliveries(
        tenant_id=principal.tenant_id,
        status=status_filter,
        run_id=run_id,
        requested_by=principal.subject,
    )
    return await ask(request, RedeliveryCount, service=SERVICE)


@router.post(
    "/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryView,
    summary="Redeliver one delivery, failed or delivered, under the same webhook-id (admin)",
    description="It starts over: due now, its attempts counted from zero, signed afresh. A "
    "delivery being attempted at this moment is answered as it is, left to that attempt.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def redeliver_one(
    delivery_id: UUID, principal: CurrentAdmin, ask: AskerDep
) -> WebhookDeliveryView:
    request = RedeliverWebhookDelivery(
        tenant_id=principal.tenant_id, delivery_id=delivery_id, requested_by=principal.subject
    )
    return await ask(request, WebhookDeliveryView, service=SERVICE)
