"""Sessions: operators group runs under a name, follow them together and cancel them together."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from controlroom_contracts.resources import SessionIn, SessionPage, SessionView
from controlroom_contracts.responses import SessionCancelAccepted
from controlroom_gateway.api.deps import CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.runs import sessions

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], route_class=InteroperableJsonRoute)

_NOT_FOUND = PROBLEM | {"description": "No such session for this tenant"}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionView,
    summary="Start a session; runs join it with `session_id` in their job",
    responses={
        401: PROBLEM,
        403: PROBLEM | {"description": "Role below operator"},
        413: PROBLEM | {"description": "Body too large"},
        422: PROBLEM | {"description": "Invalid body; `errors` names each field"},
    },
)
async def create_session(
    body: SessionIn, principal: CurrentOperator, gateway: GatewayDep
) -> SessionView:
    return await sessions.create_session(gateway, principal, body)


@router.get(
    "",
    response_model=SessionPage,
    summary="The tenant's sessions, newest first, with cursor pagination",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def list_sessions(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionPage:
    return await sessions.list_sessions(gateway, principal, limit=limit, cursor=cursor)


@router.get(
    "/{session_id}",
    response_model=SessionView,
    summary="A session, its aggregate status and its runs per status",
    responses={401: PROBLEM, 404: _NOT_FOUND, 422: PROBLEM},
)
async def get_session(
    session_id: UUID, principal: CurrentPrincipal, gateway: GatewayDep
) -> SessionView:
    return await sessions.get_session(gateway, principal, session_id)


@router.post(
    "/{session_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SessionCancelAccepted,
    summary="Request cancellation of every run of the session that has not finished",
    responses={401: PROBLEM, 403: PROBLEM, 404: _NOT_FOUND, 422: PROBLEM},
)
async def cancel_session(
    session_id: UUID, principal: CurrentOperator, gateway: GatewayDep
) -> SessionCancelAccepted:
    return await sessions.cancel_session(gateway, principal, session_id)
