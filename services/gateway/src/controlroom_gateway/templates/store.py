"""Job templates: named, versioned job requests of a tenant (each save is a new version)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from controlroom_contracts.api import JobRequest
from controlroom_contracts.resources import TemplateView
from controlroom_gateway.read_model.store import job_templates


def _view(values: Any) -> TemplateView:
    return TemplateView(
        name=values["name"],
        version=values["version"],
        description=values["description"],
        job=JobRequest.model_validate(values["job"]),
        created_by=values["created_by"],
        created_at=values["created_at"],
    )


def template_job(name: str, job: JobRequest, inputs: dict[str, str]) -> JobRequest:
    """The template's job with ``inputs`` merged over its declared ones (running it, a tick),
    named after the template: its lineage edges are recorded under that name."""
    return job.model_copy(
        update={
            "name": name,
            "spec": job.spec.model_copy(update={"inputs": dict(job.spec.inputs) | inputs}),
        }
    )


async def add_version(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    description: str,
    job: JobRequest,
    created_by: str,
    created_at: datetime,
) -> TemplateView:
    """Save the next version of ``name``."""
    t = job_templates
    # Saves of one name wait for each other, so two never pick the same version number.
    lock_key = sa.func.hashtext(f"controlroom.template/{tenant_id}/{name}")
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
    latest = (
        await session.execute(
            sa.select(sa.func.max(t.c.version)).where(t.c.tenant_id == tenant_id, t.c.name == name)
        )
    ).scalar()
    values = {
        "tenant_id": tenant_id,
        "name": name,
        "version": (latest or 0) + 1,
        "description": description,
        "job": job.model_dump(mode="json"),
        "created_by": created_by,
        "created_at": created_at,
    }
    await session.execute(sa.insert(t).values(**values))
    return _view(values)


async def get(
    db: AsyncSession | AsyncConnection, tenant_id: str, name: str, version: int | None
) -> TemplateView | None:
    """The given version of a template, or its latest."""
    t = job_templates
    query = sa.select(t).where(t.c.tenant_id == tenant_id, t.c.name == name)
    if version is not None:
        query = query.where(t.c.version == version)
    row = (await db.execute(query.order_by(t.c.version.desc()).limit(1))).first()
    return None if row is None else _view(row._mapping)


async def list_latest(
    db: AsyncSession | AsyncConnection, tenant_id: str, *, after: str | None, limit: int
) -> list[TemplateView]:
    """The latest version of each template, by name."""
    t = job_templates
    query = (
        sa.select(t)
        .ext(distinct_on(t.c.name))
        .where(t.c.tenant_id == tenant_id)
        .order_by(t.c.name, t.c.version.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(t.c.name > after)
    return [_view(row._mapping) for row in await db.execute(query)]


async def delete(session: AsyncSession, tenant_id: str, name: str) -> int:
    """Delete every version; returns how many there were."""
    t = job_templates
    result = await session.execute(
        sa.delete(t).where(t.c.tenant_id == tenant_id, t.c.name == name).returning(t.c.version)
    )
    return len(result.all())
