"""Job templates: admins save named, versioned jobs; operators run them with their own inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from controlroom_contracts.api import NoNulStr, SubmitResponse
from controlroom_contracts.base import utc_now
from controlroom_contracts.resources import (
    TEMPLATE_NAME_PATTERN,
    TemplateIn,
    TemplatePage,
    TemplateRunIn,
    TemplateView,
)
from controlroom_gateway import job_checks, templates_store
from controlroom_gateway.deps import (
    CallbackPolicyDep,
    CurrentAdmin,
    CurrentOperator,
    CurrentPrincipal,
    LimitsDep,
    RuntimeDep,
    SubmissionsDep,
)
from controlroom_gateway.errors import PROBLEM, NotFound
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_gateway.pagination import decode_name_cursor, encode_name_cursor
from controlroom_gateway.routes import accept_job

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
    body: TemplateIn,
    principal: CurrentAdmin,
    runtime: RuntimeDep,
    limits: LimitsDep,
    policy: CallbackPolicyDep,
) -> TemplateView:
    # A template that could not be submitted is refused now, not when someone runs it.
    job_checks.refuse(await job_checks.job_problems(body.job, limits, policy))
    async with runtime.sessions() as session, session.begin():
        return await templates_store.add_version(
            session,
            tenant_id=principal.tenant_id,
            name=body.name,
            description=body.description,
            job=body.job,
            created_by=principal.subject,
            created_at=utc_now(),
        )


@router.get(
    "",
    response_model=TemplatePage,
    summary="The tenant's templates (latest version of each), by name",
    responses={401: PROBLEM, 422: PROBLEM},
)
async def list_templates(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[NoNulStr | None, Query(max_length=200)] = None,
) -> TemplatePage:
    after = decode_name_cursor(cursor) if cursor else None
    async with runtime.autocommit.connect() as connection:
        items = await templates_store.list_latest(
            connection, principal.tenant_id, after=after, limit=limit + 1
        )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_name_cursor(items[-1].name)
    return TemplatePage(items=items, next_cursor=next_cursor)


@router.get(
    "/{name}",
    response_model=TemplateView,
    summary="A template: its latest version, or the one asked for",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
async def get_template(
    name: NamePath,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> TemplateView:
    async with runtime.autocommit.connect() as connection:
        found = await templates_store.get(connection, principal.tenant_id, name, version)
    if found is None:
        raise NotFound(_missing(name, version))
    return found


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a template with all its versions (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
async def delete_template(name: NamePath, principal: CurrentAdmin, runtime: RuntimeDep) -> Response:
    async with runtime.sessions() as session, session.begin():
        deleted = await templates_store.delete(session, principal.tenant_id, name)
    if not deleted:
        raise NotFound(_missing(name, None))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitResponse,
    summary="Submit the template's job, with inputs merged over its own",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM},
)
async def run_template(
    name: NamePath,
    body: TemplateRunIn,
    principal: CurrentOperator,
    runtime: RuntimeDep,
    limits: LimitsDep,
    policy: CallbackPolicyDep,
    submissions: SubmissionsDep,
) -> SubmitResponse:
    async with runtime.autocommit.connect() as connection:
        template = await templates_store.get(connection, principal.tenant_id, name, body.version)
    if template is None:
        raise NotFound(_missing(name, body.version))
    job = templates_store.template_job(template.name, template.job, body.inputs)
    job = job.model_copy(update={"created_by": body.created_by or job.created_by})
    submission = await accept_job(job, principal, runtime, limits, policy, submissions, None)
    return SubmitResponse(run_id=submission.run_id, created_at=submission.created_at)


def _missing(name: str, version: int | None) -> str:
    return f"template {name!r}" + (f" version {version}" if version else "") + " not found"
