"""Job templates: admins save named, versioned jobs; operators run them with their own inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from controlroom_contracts.api import NoNulStr, SubmitResponse
from controlroom_contracts.resources import (
    TEMPLATE_NAME_PATTERN,
    TemplateIn,
    TemplatePage,
    TemplateRunIn,
    TemplateView,
)
from controlroom_gateway.api.deps import CurrentAdmin, CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.templates import service

router = APIRouter(
    prefix="/api/v1/templates", tags=["templates"], route_class=InteroperableJsonRoute
)

NamePath = Annotated[str, Path(pattern=TEMPLATE_NAME_PATTERN)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateView,
    summary="Save a new version of a job template (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 413: PROBLEM, 422: PROBLEM},
)
async def save_template(
    body: TemplateIn, principal: CurrentAdmin, gateway: GatewayDep
) -> TemplateView:
    return await service.save_template(gateway, principal, body)


@router.get(
    "",
    response_model=TemplatePage,
    summary="The tenant's templates (latest version of each), by name",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def list_templates(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[NoNulStr | None, Query(max_length=200)] = None,
) -> TemplatePage:
    return await service.list_templates(gateway, principal, limit=limit, cursor=cursor)


@router.get(
    "/{name}",
    response_model=TemplateView,
    summary="A template: its latest version, or the one asked for",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
async def get_template(
    name: NamePath,
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> TemplateView:
    return await service.get_template(gateway, principal, name, version)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a template with all its versions (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
async def delete_template(name: NamePath, principal: CurrentAdmin, gateway: GatewayDep) -> Response:
    await service.delete_template(gateway, principal, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitResponse,
    summary="Submit the template's job, with inputs merged over its own",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM},
)
async def run_template(
    name: NamePath, body: TemplateRunIn, principal: CurrentOperator, gateway: GatewayDep
) -> SubmitResponse:
    submission = await service.run_template(gateway, principal, name, body)
    return SubmitResponse(run_id=submission.run_id, created_at=submission.created_at)
