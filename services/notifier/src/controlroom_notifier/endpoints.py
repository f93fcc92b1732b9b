"""Admin management of a tenant's webhook endpoints: each gets its own signing secret."""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Any, cast
from uuid import uuid4

import sqlalchemy as sa

from controlroom_contracts.events import WebhookEndpointAdded, WebhookEndpointRemoved
from controlroom_contracts.management import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    Done,
    GetWebhookEndpoint,
    ListWebhookEndpoints,
    WebhookEndpointList,
    WebhookEndpointView,
    WebhookEndpointWithSecret,
    WebhookEventType,
)
from controlroom_notifier import store
from controlroom_runtime.rpc import RpcFailure
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def endpoint_view(row: sa.Row[Any]) -> WebhookEndpointView:
    return WebhookEndpointView(
        id=row.id,
        url=row.url,
        event_types=cast(list[WebhookEventType], list(row.event_types)),
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
    )


class EndpointAdmin:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime

    async def create(self, request: CreateWebhookEndpoint) -> WebhookEndpointWithSecret:
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            row = await store.create_endpoint(
                uow.session,
                id=uuid4(),
                tenant_id=request.tenant_id,
                url=str(request.endpoint.url),
                event_types=list(request.endpoint.event_types),
                description=request.endpoint.description,
                secret=new_secret(),
                created_by=request.created_by,
            )
            await uow.emit(
                WebhookEndpointAdded(
                    tenant_id=request.tenant_id,
                    endpoint_id=row.id,
                    url=row.url,
                    event_types=list(row.event_types),
                    added_by=request.created_by,
                )
            )
        log.info("webhook endpoint added", extra={"endpoint_id": str(row.id)})
        return WebhookEndpointWithSecret(**endpoint_view(row).model_dump(), secret=row.secret)

    async def list(self, request: ListWebhookEndpoints) -> WebhookEndpointList:
        after = (request.after.created_at, request.after.id) if request.after else None
        async with self._runtime.sessions() as session:
            rows = await store.list_endpoints(
                session, request.tenant_id, limit=request.limit + 1, after=after
            )
        return WebhookEndpointList(
            items=[endpoint_view(r) for r in rows[: request.limit]], more=len(rows) > request.limit
        )

    async def get(self, request: GetWebhookEndpoint) -> WebhookEndpointView:
        async with self._runtime.sessions() as session:
            row = await store.get_endpoint(session, request.tenant_id, request.endpoint_id)
        if row is None:
            raise RpcFailure("not_found", f"no webhook endpoint {request.endpoint_id}")
        return endpoint_view(row)

    async def delete(self, request: DeleteWebhookEndpoint) -> Done:
        async with unit_of_work(self._runtime.sessions, self._runtime.outbox) as uow:
            if not await store.delete_endpoint(uow.session, request.tenant_id, request.endpoint_id):
                raise RpcFailure("not_found", f"no webhook endpoint {request.endpoint_id}")
            await uow.emit(
                WebhookEndpointRemoved(
                    tenant_id=request.tenant_id,
                    endpoint_id=request.endpoint_id,
                    removed_by=request.deleted_by,
                )
            )
        log.info("webhook endpoint deleted", extra={"endpoint_id": str(request.endpoint_id)})
        return Done(id=request.endpoint_id)
