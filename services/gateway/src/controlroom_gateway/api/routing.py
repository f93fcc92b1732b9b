"""The routing matrix, read-only: which executor kind runs each job type, in which image, with
what limits and default policy (``CONTROLROOM_ROUTING_FILE``, read at start)."""

from __future__ import annotations

from fastapi import APIRouter

from controlroom_contracts.resources import RoutingView
from controlroom_gateway.api.deps import CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM

router = APIRouter(prefix="/api/v1", tags=["routing"], route_class=InteroperableJsonRoute)


@router.get(
    "/routing",
    response_model=RoutingView,
    summary="The routing matrix: each job type's executor kind, image, limits and defaults",
    responses={401: PROBLEM | {"description": "Missing or invalid token"}},
)
async def get_routing(_principal: CurrentPrincipal, gateway: GatewayDep) -> RoutingView:
    return gateway.routing
