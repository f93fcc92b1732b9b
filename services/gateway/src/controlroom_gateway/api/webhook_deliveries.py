"""The tenant's webhook deliveries (admin) and their redelivery, owned by the notifier
(``webhooks.deliveries``)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status

from controlroom_contracts.management import (
    RedeliveryCount,
    WebhookDeliveryPage,
    WebhookDeliveryStatus,
    WebhookDeliveryView,
)
from controlroom_gateway.api.deps import CurrentAdmin, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.webhooks import deliveries

router = APIRouter(
    prefix="/api/v1/webhook-deliveries",
    tags=["webhook deliveries"],
    route_class=InteroperableJsonRoute,
)

RunFilter = Annotated[UUID | None, Query(description="Only the deliveries about this run")]


@router.get(
    "",
    response_model=WebhookDeliveryPage,
    summary="The tenant's webhook deliveries, newest first, with their attempts (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_deliveries(
    principal: CurrentAdmin,
    gateway: GatewayDep,
    status_filter: Annotated[
        WebhookDeliveryStatus | None, Query(alias="status", description="Only in this status")
    ] = None,
    run_id: RunFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookDeliveryPage:
    return await deliveries.list_deliveries(
        gateway, principal, status=status_filter, run_id=run_id, limit=limit, cursor=cursor
    )


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
    gateway: GatewayDep,
    status_filter: Annotated[
        Literal["failed"], Query(alias="status", description="Which deliveries: `failed`")
    ],
    run_id: RunFilter = None,
) -> RedeliveryCount:
    return await deliveries.redeliver_failed(
        gateway, principal, status=status_filter, run_id=run_id
    )


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
    delivery_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> WebhookDeliveryView:
    return await deliveries.redeliver_one(gateway, principal, delivery_id)
