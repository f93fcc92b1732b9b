"""Tenant webhook endpoints (admin), owned by the notifier (``webhooks.endpoints``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.management import (
    WebhookEndpointIn,
    WebhookEndpointPage,
    WebhookEndpointView,
    WebhookEndpointWithSecret,
)
from controlroom_gateway.api.deps import CurrentAdmin, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.webhooks import endpoints

router = APIRouter(
    prefix="/api/v1/webhook-endpoints",
    tags=["webhook endpoints"],
    route_class=InteroperableJsonRoute,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointWithSecret,
    summary="Add a webhook endpoint for the tenant's run events (admin); the secret is shown once",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def create_endpoint(
    body: WebhookEndpointIn, principal: CurrentAdmin, gateway: GatewayDep
) -> WebhookEndpointWithSecret:
    return await endpoints.create_endpoint(gateway, principal, body)


@router.get(
    "",
    response_model=WebhookEndpointPage,
    summary="The tenant's webhook endpoints, oldest first (admin; secrets are not shown)",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_endpoints(
    principal: CurrentAdmin,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookEndpointPage:
    return await endpoints.list_endpoints(gateway, principal, limit=limit, cursor=cursor)


@router.get(
    "/{endpoint_id}",
    response_model=WebhookEndpointView,
    summary="One webhook endpoint (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM},
)
async def get_endpoint(
    endpoint_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> WebhookEndpointView:
    return await endpoints.get_endpoint(gateway, principal, endpoint_id)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint (admin); its pending deliveries are dropped",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM},
)
async def delete_endpoint(
    endpoint_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> Response:
    await endpoints.delete_endpoint(gateway, principal, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
