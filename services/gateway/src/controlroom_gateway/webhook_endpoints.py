"""Tenant webhook endpoints (admin): every terminal run event of the tenant, signed per endpoint.

The notifier owns them; the gateway checks the URL with the same policy as job callbacks.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from controlroom_contracts.management import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    Done,
    GetWebhookEndpoint,
    ListWebhookEndpoints,
    WebhookEndpointIn,
    WebhookEndpointList,
    WebhookEndpointPage,
    WebhookEndpointView,
    WebhookEndpointWithSecret,
)
from controlroom_gateway.deps import AskerDep, CallbackPolicyDep, CurrentAdmin
from controlroom_gateway.errors import PROBLEM, InvalidRequest
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.pagination import keyset_after, keyset_next
from controlroom_gateway.service import url_problem

router = APIRouter(
    prefix="/api/v1/webhook-endpoints",
    tags=["webhook endpoints"],
    route_class=InteroperableJsonRoute,
)

SERVICE = "notifier"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointWithSecret,
    summary="Add a webhook endpoint for the tenant's run events (admin); the secret is shown once",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def create_endpoint(
    body: WebhookEndpointIn, principal: CurrentAdmin, ask: AskerDep, policy: CallbackPolicyDep
) -> WebhookEndpointWithSecret:
    if error := await url_problem(policy, str(body.url), "body.url"):
        raise InvalidRequest(error["message"], errors=[error])
    request = CreateWebhookEndpoint(
        tenant_id=principal.tenant_id, endpoint=body, created_by=principal.subject
    )
    return await ask(request, WebhookEndpointWithSecret, service=SERVICE)


@router.get(
    "",
    response_model=WebhookEndpointPage,
    summary="The tenant's webhook endpoints, oldest first (admin; secrets are not shown)",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_endpoints(
    principal: CurrentAdmin,
    ask: AskerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookEndpointPage:
    request = ListWebhookEndpoints(
        tenant_id=principal.tenant_id, limit=limit, after=keyset_after(cursor)
    )
    found = await ask(request, WebhookEndpointList, service=SERVICE)
    return WebhookEndpointPage(items=found.items, next_cursor=keyset_next(found.items, found.more))


@router.get(
    "/{endpoint_id}",
    response_model=WebhookEndpointView,
    summary="One webhook endpoint (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM},
)
async def get_endpoint(
    endpoint_id: UUID, principal: CurrentAdmin, ask: AskerDep
) -> WebhookEndpointView:
    request = GetWebhookEndpoint(tenant_id=principal.tenant_id, endpoint_id=endpoint_id)
    return await ask(request, WebhookEndpointView, service=SERVICE)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint (admin); its pending deliveries are dropped",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 503: PROBLEM},
)
async def delete_endpoint(endpoint_id: UUID, principal: CurrentAdmin, ask: AskerDep) -> Response:
    request = DeleteWebhookEndpoint(
        tenant_id=principal.tenant_id, endpoint_id=endpoint_id, deleted_by=principal.subject
    )
    await ask(request, Done, service=SERVICE)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
