"""Job templates: admins save named, versioned jobs; operators run them with their own inputs."""

from __future__ import annotations

from controlroom_contracts.base import utc_now
from controlroom_contracts.resources import TemplateIn, TemplatePage, TemplateRunIn, TemplateView
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import NotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs import job_checks
from controlroom_gateway.jobs.submit import Submission, accept_job
from controlroom_gateway.pagination import decode_name_cursor, encode_name_cursor
from controlroom_gateway.templates import store


async def save_template(gateway: Gateway, principal: Principal, body: TemplateIn) -> TemplateView:
    """Save the next version of the template named in ``body``."""
    # A template that could not be submitted is refused now, not when someone runs it.
    job_checks.refuse(
        await job_checks.job_problems(body.job, gateway.limits, gateway.callback_policy)
    )
    async with gateway.runtime.sessions() as session, session.begin():
        return await store.add_version(
            session,
            tenant_id=principal.tenant_id,
            name=body.name,
            description=body.description,
            job=body.job,
            created_by=principal.subject,
            created_at=utc_now(),
        )


async def list_templates(
    gateway: Gateway, principal: Principal, *, limit: int, cursor: str | None
) -> TemplatePage:
    """The latest version of each of the tenant's templates, by name, a page at a time."""
    after = decode_name_cursor(cursor) if cursor else None
    async with gateway.runtime.autocommit.connect() as connection:
        items = await store.list_latest(
            connection, principal.tenant_id, after=after, limit=limit + 1
        )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_name_cursor(items[-1].name)
    return TemplatePage(items=items, next_cursor=next_cursor)


async def get_template(
    gateway: Gateway, principal: Principal, name: str, version: int | None
) -> TemplateView:
    """The template's given version, or its latest."""
    async with gateway.runtime.autocommit.connect() as connection:
        found = await store.get(connection, principal.tenant_id, name, version)
    if found is None:
        raise NotFound(_missing(name, version))
    return found


async def delete_template(gateway: Gateway, principal: Principal, name: str) -> None:
    """Delete the template with all its versions."""
    async with gateway.runtime.sessions() as session, session.begin():
        deleted = await store.delete(session, principal.tenant_id, name)
    if not deleted:
        raise NotFound(_missing(name, None))


async def run_template(
    gateway: Gateway, principal: Principal, name: str, body: TemplateRunIn
) -> Submission:
    """Submit the template's job (the version asked for, or its latest) with ``body``'s inputs
    merged over its own, checked as any submission is."""
    async with gateway.runtime.autocommit.connect() as connection:
        template = await store.get(connection, principal.tenant_id, name, body.version)
    if template is None:
        raise NotFound(_missing(name, body.version))
    job = store.template_job(template.name, template.job, body.inputs)
    job = job.model_copy(update={"created_by": body.created_by or job.created_by})
    return await accept_job(gateway, principal, job)


def _missing(name: str, version: int | None) -> str:
    return f"template {name!r}" + (f" version {version}" if version else "") + " not found"
