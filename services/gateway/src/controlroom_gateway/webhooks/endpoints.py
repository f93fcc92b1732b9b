"""Tenant webhook endpoints (admin): every terminal run event of the tenant, signed per endpoint.

The notifier owns them; the gateway checks the URL with the same policy as job callbacks.
"""

from __future__ import annotations

from uuid import UUID

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
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import InvalidRequest
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs.limits import url_problem
from controlroom_gateway.pagination import keyset_after, keyset_next

SERVICE = "notifier"


async def create_endpoint(
    gateway: Gateway, principal: Principal, body: WebhookEndpointIn
) -> WebhookEndpointWithSecret:
    """Add the endpoint (its URL must pass the callback policy); its secret is shown once."""
    if error := await url_problem(gateway.callback_policy, str(body.url), "body.url"):
        raise InvalidRequest(error["message"], errors=[error])
    request = CreateWebhookEndpoint(
        tenant_id=principal.tenant_id, endpoint=body, created_by=principal.subject
    )
    return await gateway.ask(request, WebhookEndpointWithSecret, service=SERVICE)


async def list_endpoints(
    gateway: Gateway, principal: Principal, *, limit: int, cursor: str | None
) -> WebhookEndpointPage:
    """The tenant's endpoints, oldest first (secrets are not shown)."""
    request = ListWebhookEndpoints(
        tenant_id=principal.tenant_id, limit=limit, after=keyset_after(cursor)
    )
    found = await gateway.ask(request, WebhookEndpointList, service=SERVICE)
    return WebhookEndpointPage(items=found.items, next_cursor=keyset_next(found.items, found.more))


async def get_endpoint(
    gateway: Gateway, principal: Principal, endpoint_id: UUID
) -> WebhookEndpointView:
    request = GetWebhookEndpoint(tenant_id=principal.tenant_id, endpoint_id=endpoint_id)
    return await gateway.ask(request, WebhookEndpointView, service=SERVICE)


async def delete_endpoint(gateway: Gateway, principal: Principal, endpoint_id: UUID) -> None:
    """Delete the endpoint; its pending deliveries are dropped."""
    request = DeleteWebhookEndpoint(
        tenant_id=principal.tenant_id, endpoint_id=endpoint_id, deleted_by=principal.subject
    )
    await gateway.ask(request, Done, service=SERVICE)
