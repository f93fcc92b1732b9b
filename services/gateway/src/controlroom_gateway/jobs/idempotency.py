"""``Idempotency-Key`` on submission: the same key and body within the key's lifetime
(``CONTROLROOM_IDEMPOTENCY_KEY_TTL_HOURS``, 24 h as Stripe keeps them) is the same run.

A key past its lifetime never replays, whether or not retention has deleted its row yet:
``reserve`` replaces it. Retention deletes the rest (``retention``)."""

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
from controlroom_gateway.read_model.store import idempotency_keys


@dataclass(frozen=True)
class IdempotencyKey:
    """The client's key, and how long it names its submission."""

    value: str
    lifetime: timedelta


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
    key: IdempotencyKey,
    fingerprint: str,
    run_id: UUID,
    created_at: datetime,
) -> PriorSubmission | None:
    """Claim ``key`` for this submission, or return the submission that already holds it
    (unless that one is past the key's lifetime: then the key is this submission's).

    Runs inside the submission's transaction: a concurrent request with the same key waits on
    the row lock and then sees the committed run.
    """
    t = idempotency_keys
    await session.execute(
        sa.delete(t).where(
            t.c.tenant_id == tenant_id,
            t.c.key == key.value,
            t.c.created_at < created_at - key.lifetime,
        )
    )
    inserted = await session.execute(
        insert(t)
        .values(
            tenant_id=tenant_id,
            key=key.value,
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
                t.c.tenant_id == tenant_id, t.c.key == key.value
            )
        )
    ).one()
    return PriorSubmission(prior.run_id, prior.created_at, prior.fingerprint == fingerprint)
