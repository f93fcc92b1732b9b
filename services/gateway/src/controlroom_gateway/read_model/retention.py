"""What the gateway forgets, and when (the runtime's ``retention`` does the deleting).

- An idempotency key is deleted once past its lifetime (``idempotency`` already refuses to
  replay it from then on, deleted or not).
- A run that ended ``CONTROLROOM_RUN_RETENTION_DAYS`` ago expires: ``expired_at`` is set, and
  from then on the API answers as if it never existed (``store.SHOWN``). A run that has not
  ended never expires.
- ``CONTROLROOM_RUN_PURGE_GRACE_DAYS`` after it expired, the run is deleted with its history,
  its artifacts' rows and their stored objects. The grace leaves time to notice a retention
  set too short and restore the runs (``expired_at = NULL``) before anything is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.api import RunStatus
from controlroom_gateway.read_model.store import (
    artifacts,
    idempotency_keys,
    run_events,
    run_jobs,
    runs,
)
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.objectstore import ObjectStore
from controlroom_runtime.retention import RetentionRule
from controlroom_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

OBJECT_DELETES_AT_ONCE = 8
"""Object-store deletions in flight at once while a batch of runs is purged."""

_ENDED = ", ".join(f"'{s.value}'" for s in RunStatus if s.is_terminal)
# Literal statuses, not parameters, and the condition of ``ix_runs_unexpired_completed``: the
# planner uses a partial index only for a query it can prove implies the index's condition.
_EXPIRE_RUNS = sa.text(
    f"""
    UPDATE {runs.fullname} SET expired_at = now()
    WHERE run_id IN (
        SELECT run_id FROM {runs.fullname}
        WHERE expired_at IS NULL AND completed_at < now() - :horizon
          AND status IN ({_ENDED})
        LIMIT :batch_size
        FOR UPDATE SKIP LOCKED
    )
    """
).bindparams(
    sa.bindparam("horizon", type_=sa.Interval()), sa.bindparam("batch_size", type_=sa.Integer())
)


async def expire_runs(
    sessions: async_sessionmaker[AsyncSession], horizon: timedelta, *, batch_size: int = 1000
) -> int:
    """Expire every run that ended more than ``horizon`` ago, a batch per transaction; how many.

    Batches skip runs another transaction holds (the projector, another replica's pass): those
    expire at the next pass."""
    expired = 0
    while True:
        async with sessions.begin() as session:
            result = await session.execute(
                _EXPIRE_RUNS, {"horizon": horizon, "batch_size": batch_size}
            )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        expired += count
        if count < batch_size:
            break
    if expired:
        log.info("runs expired", extra={"count": expired})
    return expired


async def run_expiry(
    sessions: async_sessionmaker[AsyncSession],
    horizon: timedelta,
    interval: float,
    stopping: asyncio.Event,
) -> None:
    """Expire the runs past ``horizon``, then wait ``interval``; for the life of the service."""
    while not stopping.is_set():
        try:
            await expire_runs(sessions, horizon)
        except Exception:
            log.warning("run expiry pass failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval)


def purge_expired_runs(grace: timedelta, objects: ObjectStore) -> RetentionRule:
    """Delete runs expired ``grace`` ago, with their history, artifacts and stored objects."""

    async def before_delete(session: AsyncSession, batch: Sequence[sa.Row[Any]]) -> None:
        run_ids = [row.run_id for row in batch]
        # Objects first, rows after, in the transaction that deletes the runs. Interrupted in
        # between (a crash, the store failing half-way), the transaction rolls back: the rows
        # stay, pointing at objects that may be gone, and the next pass deletes again what is
        # left (deleting a missing object is no error). The other order would commit the rows'
        # deletion and then could lose the only record of where the objects are: they would
        # stay in the bucket for good, kept past the retention the operator promised.
        prefixes = {f"{row.tenant_id}/{row.run_id}/" for row in batch}
        keys = (
            await session.execute(
                sa.select(artifacts.c.storage_key).where(artifacts.c.run_id.in_(run_ids))
            )
        ).scalars()
        # A run's objects are all under its prefix (``tenant/run/artifact``), also those whose
        # record never made it; a key stored elsewhere is deleted by name.
        under = tuple(prefixes)
        elsewhere = {key for key in keys if not key.startswith(under)}
        await _delete_objects(objects, prefixes, elsewhere)
        await session.execute(sa.delete(artifacts).where(artifacts.c.run_id.in_(run_ids)))
        await session.execute(sa.delete(run_events).where(run_events.c.run_id.in_(run_ids)))
        await session.execute(sa.delete(run_jobs).where(run_jobs.c.run_id.in_(run_ids)))

    return RetentionRule("expired_runs", runs, "expired_at", grace, before_delete=before_delete)


async def _delete_objects(objects: ObjectStore, prefixes: set[str], keys: set[str]) -> None:
    room = asyncio.Semaphore(OBJECT_DELETES_AT_ONCE)

    async def bounded(deletion: Awaitable[object]) -> None:
        async with room:
            await deletion

    async with asyncio.TaskGroup() as group:
        for prefix in prefixes:
            group.create_task(bounded(objects.delete_prefix(prefix)))
        for key in keys:
            group.create_task(bounded(objects.delete(key)))


def install(runtime: ServiceRuntime, settings: GatewaySettings, objects: ObjectStore) -> None:
    """Register the gateway's retention on ``runtime``: keys, run expiry, and the purge."""
    runtime.retain(
        RetentionRule(
            "idempotency_keys",
            idempotency_keys,
            "created_at",
            timedelta(hours=settings.idempotency_key_ttl_hours),
        )
    )
    horizon = timedelta(days=settings.run_retention_days)
    runtime.background(
        lambda stopping: run_expiry(
            runtime.sessions, horizon, settings.retention_interval_seconds, stopping
        )
    )
    runtime.retain(purge_expired_runs(timedelta(days=settings.run_purge_grace_days), objects))
