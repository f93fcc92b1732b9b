"""Reading runs: one run, a page of the tenant's runs, their counts per status, a run's job,
and the tenant's concurrency limits. Queued runs come with why they wait (``queue_info``)."""

from __future__ import annotations

from uuid import UUID

from controlroom_contracts.api import RunCounts, RunJobView, RunPage, RunView
from controlroom_contracts.rpc import LimitsAnswer, LimitsQuery
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import NotFound, RunNotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.pagination import decode_cursor, encode_cursor
from controlroom_gateway.read_model import run_jobs, store
from controlroom_gateway.read_model.store import RunFilter
from controlroom_gateway.runs import queue_info


async def get_run(gateway: Gateway, principal: Principal, run_id: UUID) -> RunView:
    """The run's status, timestamps, exit code and error; another tenant's is not found."""
    async with gateway.runtime.autocommit.connect() as connection:
        view = await store.get_run(connection, run_id, principal.tenant_id)
    if view is None:
        raise RunNotFound(f"run {run_id} not found")
    return (await queue_info.explained([view], principal.tenant_id, gateway.ask))[0]


async def list_runs(
    gateway: Gateway, principal: Principal, filters: RunFilter, *, limit: int, cursor: str | None
) -> RunPage:
    """The tenant's runs matching ``filters``, newest first, a page of ``limit`` after
    ``cursor`` (the ``next_cursor`` of the page before)."""
    after = decode_cursor(cursor) if cursor else None
    async with gateway.runtime.sessions() as session:
        items = await store.list_runs(
            session, principal.tenant_id, filters, limit=limit + 1, after=after
        )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].run_id)
    items = await queue_info.explained(items, principal.tenant_id, gateway.ask)
    return RunPage(items=items, next_cursor=next_cursor)


async def count_runs(gateway: Gateway, principal: Principal, filters: RunFilter) -> RunCounts:
    """How many of the tenant's runs match ``filters``, per status."""
    async with gateway.runtime.sessions() as session:
        counts = await store.count_runs(session, principal.tenant_id, filters)
    return RunCounts(counts=counts, total=sum(counts.values()))


async def get_run_job(gateway: Gateway, principal: Principal, run_id: UUID) -> RunJobView:
    """The job the run was submitted with (callbacks left out)."""
    async with gateway.runtime.sessions() as session:
        job = await run_jobs.get_job(session, principal.tenant_id, run_id)
        if job is None and await store.run_state(session, run_id, principal.tenant_id) is None:
            raise RunNotFound(f"run {run_id} not found")
    if job is None:
        raise NotFound(f"the job of run {run_id} was not kept (submitted before jobs were)")
    return job


async def get_limits(gateway: Gateway, principal: Principal) -> LimitsAnswer:
    """The tenant's concurrency caps per lane and what uses them now, asked of the scheduler."""
    query = LimitsQuery(tenant_id=principal.tenant_id)
    return await gateway.ask(query, LimitsAnswer, service="scheduler")
