"""``Idempotency-Key`` on submission: the same key and body within 24 h is the same run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from controlroom_contracts.api import JobRequest
from controlroom_gateway.store import idempotency_keys

KEY_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class PriorSubmission:
    run_id: UUID
    created_at: datetime
    same_body: bool


def request_fingerprint(job: JobRequest) -> str:
    canonical = json.dumps(job.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def reserve(
    session: AsyncSession,
    *,
    tenant_id: str,
    key: str,
    fingerprint: str,
    run_id: UUID,
    created_at: datetime,
) -> PriorSubmission | None:
    """Claim ``key`` for this submission, or return the submission that already holds it.

    Runs inside the submission's transaction: a concurrent request with the same key waits on
    the row lock and then sees the committed run.
    """
    t = idempotency_keys
    await session.execute(
        sa.delete(t).where(
            t.c.tenant_id == tenant_id, t.c.key == key, t.c.created_at < created_at - KEY_LIFETIME
        )
    )
    inserted = await session.execute(
        insert(t)
        .values(
            tenant_id=tenant_id,
            key=key,
            fingerprint=fingerprint,
            run_id=run_id,
            created_at=created_at,
        )
        .on_conflict_do_nothing()
        .returning(t.c.run_id)
    )
    if inserted.first() is not None:
        return None
    prior = (
        await session.execute(
            sa.select(t.c.run_id, t.c.created_at, t.c.fingerprint).where(
                t.c.tenant_id == tenant_id, t.c.key == key
            )
        )
    ).one()
    return PriorSubmission(prior.run_id, prior.created_at, prior.fingerprint == fingerprint)
