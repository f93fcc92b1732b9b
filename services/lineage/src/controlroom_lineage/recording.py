"""Recording runs on their edges: a batch of runs in two statements, whatever their number.

Each run adds an edge from every source to every target under its job, or a reference to the
edge when it exists. An edge's id is its identity hashed (``lineage.edge_id``), so it is found
by primary key. References go in first and only references new to ``edge_runs`` count: the
same run recorded twice changes nothing. Rows are written in key order, so two transactions
recording the same edges take their locks in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class RunRecord:
    """One run's lineage: its job's edges from every source to every target."""

    tenant_id: str
    job: str
    origin: str
    run_id: UUID
    at: datetime
    actor: str
    sources: Sequence[str]
    targets: Sequence[str]


@dataclass(frozen=True)
class Recorded:
    edges: int
    """Edges the run was recorded on (0 when it had been already)."""
    new_edges: int
    """Of those, edges no run had recorded before."""


# ``ev`` numbers the runs of the batch. Two runs of a batch may reference one edge: the edge is
# written once with both counted, and a new edge is credited to the batch's first run of it.
_RECORD_EDGES = sa.text(
    """
    WITH pairs AS (
        SELECT ev, lineage.edge_id(tenant, s, t, job) AS id, tenant, s, t, job, origin, run,
               at, actor
        FROM unnest(CAST(:ev AS int[]), CAST(:tenant AS text[]), CAST(:source AS text[]),
                    CAST(:target AS text[]), CAST(:job AS text[]), CAST(:origin AS text[]),
                    CAST(:run AS uuid[]), CAST(:at AS timestamptz[]), CAST(:actor AS text[]))
             AS p(ev, tenant, s, t, job, origin, run, at, actor)
    ), referenced AS (
        INSERT INTO lineage.edge_runs (edge_id, run_id, recorded_at)
        SELECT id, run, at FROM pairs ORDER BY id, run
        ON CONFLICT DO NOTHING
        RETURNING edge_id, run_id
    ), credited AS (
        SELECT r.edge_id AS id, min(p.ev) AS ev
        FROM referenced r JOIN pairs p ON p.id = r.edge_id AND p.run = r.run_id
        GROUP BY r.edge_id, r.run_id
    ), per_edge AS (
        SELECT c.id, count(*) AS refs, min(c.ev) AS first_ev, max(p.at) AS latest_at,
               (array_agg(p.run ORDER BY p.at DESC, p.ev DESC))[1] AS latest_run
        FROM credited c JOIN pairs p ON p.id = c.id AND p.ev = c.ev
        GROUP BY c.id
    ), counted AS (
        INSERT INTO lineage.edges AS e (id, tenant_id, source_entity, target_entity, job_name,
                                        origin, edge_type, metadata, run_count, latest_run_id,
                                        latest_run_at, created_at, created_by)
        SELECT pe.id, p.tenant, p.s, p.t, p.job, p.origin, 'data_flow', '{}', pe.refs,
               pe.latest_run, pe.latest_at, p.at, p.actor
        FROM per_edge pe JOIN pairs p ON p.id = pe.id AND p.ev = pe.first_ev
        ORDER BY pe.id
        ON CONFLICT (id) DO UPDATE SET
            run_count = e.run_count + excluded.run_count,
            latest_run_id = CASE WHEN e.latest_run_at IS NULL
                                   OR e.latest_run_at <= excluded.latest_run_at
                                 THEN excluded.latest_run_id ELSE e.latest_run_id END,
            latest_run_at = GREATEST(e.latest_run_at, excluded.latest_run_at)
        RETURNING e.id, e.xmax = 0 AS created
    ), audited AS (
        INSERT INTO lineage.edge_audit (edge_id, tenant_id, action, actor, at)
        SELECT p.id, p.tenant, 'created', p.actor, p.at
        FROM counted JOIN per_edge pe ON pe.id = counted.id
             JOIN pairs p ON p.id = pe.id AND p.ev = pe.first_ev
        WHERE counted.created
    )
    SELECT c.ev, count(*) AS edges,
           count(*) FILTER (WHERE counted.created AND c.ev = pe.first_ev) AS new_edges
    FROM credited c JOIN counted ON counted.id = c.id JOIN per_edge pe ON pe.id = c.id
    GROUP BY c.ev
    """
)

# The catalogue: each dataset the batch's runs read or wrote, with its latest reader and
# writer (the newest by time wins, so events arriving out of order do not move them back; at
# the same time, the later run of the batch, as one run at a time would have it).
_NOTE_DATASETS = sa.text(
    """
    INSERT INTO lineage.datasets AS d (
        tenant_id, entity, first_seen_at,
        last_produced_run_id, last_produced_job, last_produced_at,
        last_consumed_run_id, last_consumed_job, last_consumed_at)
    SELECT tenant, name, min(at),
           (array_agg(run ORDER BY at DESC, ord DESC) FILTER (WHERE written))[1],
           (array_agg(job ORDER BY at DESC, ord DESC) FILTER (WHERE written))[1],
           max(at) FILTER (WHERE written),
           (array_agg(run ORDER BY at DESC, ord DESC) FILTER (WHERE NOT written))[1],
           (array_agg(job ORDER BY at DESC, ord DESC) FILTER (WHERE NOT written))[1],
           max(at) FILTER (WHERE NOT written)
    FROM unnest(CAST(:tenant AS text[]), CAST(:name AS text[]), CAST(:written AS boolean[]),
                CAST(:run AS uuid[]), CAST(:job AS text[]), CAST(:at AS timestamptz[]))
         WITH ORDINALITY AS x(tenant, name, written, run, job, at, ord)
    GROUP BY tenant, name
    ORDER BY tenant, name
    ON CONFLICT (tenant_id, entity) DO UPDATE SET
        first_seen_at = LEAST(d.first_seen_at, excluded.first_seen_at),
        last_produced_run_id = CASE WHEN d.last_produced_at IS NULL
                                      OR excluded.last_produced_at >= d.last_produced_at
                                    THEN COALESCE(excluded.last_produced_run_id,
                                                  d.last_produced_run_id)
                                    ELSE d.last_produced_run_id END,
        last_produced_job = CASE WHEN d.last_produced_at IS NULL
                                   OR excluded.last_produced_at >= d.last_produced_at
                                 THEN COALESCE(excluded.last_produced_job, d.last_produced_job)
                                 ELSE d.last_produced_job END,
        last_produced_at = GREATEST(d.last_produced_at, excluded.last_produced_at),
        last_consumed_run_id = CASE WHEN d.last_consumed_at IS NULL
                                      OR excluded.last_consumed_at >= d.last_consumed_at
                                    THEN COALESCE(excluded.last_consumed_run_id,
                                                  d.last_consumed_run_id)
                                    ELSE d.last_consumed_run_id END,
        last_consumed_job = CASE WHEN d.last_consumed_at IS NULL
                                   OR excluded.last_consumed_at >= d.last_consumed_at
                                 THEN COALESCE(excluded.last_consumed_job, d.last_consumed_job)
                                 ELSE d.last_consumed_job END,
        last_consumed_at = GREATEST(d.last_consumed_at, excluded.last_consumed_at)
    """
)


def _columns(names: str, rows: Iterable[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Rows as one list per column: each becomes one array parameter to ``unnest``."""
    columns: dict[str, list[Any]] = {name: [] for name in names.split()}
    for row in rows:
        for column, value in zip(columns.values(), row, strict=True):
            column.append(value)
    return columns


def _pairs(records: Sequence[RunRecord]) -> dict[str, list[Any]]:
    return _columns(
        "ev tenant source target job origin run at actor",
        (
            (ev, r.tenant_id, source, target, r.job, r.origin, r.run_id, r.at, r.actor)
            for ev, r in enumerate(records)
            for source in r.sources
            for target in r.targets
            if source != target
        ),
    )


def _datasets(records: Sequence[RunRecord]) -> dict[str, list[Any]]:
    named = ((r, n, False) for r in records for n in r.sources)
    written = ((r, n, True) for r in records for n in r.targets)
    return _columns(
        "tenant name written run job at",
        ((r.tenant_id, n, w, r.run_id, r.job, r.at) for r, n, w in (*named, *written)),
    )


async def record_runs(session: AsyncSession, records: Sequence[RunRecord]) -> list[Recorded]:
    """Record each run on its edges; what each one recorded, in order."""
    pairs = _pairs(records)
    counts: dict[int, Recorded] = {}
    if pairs["ev"]:
        rows = await session.execute(_RECORD_EDGES, pairs)
        counts = {row.ev: Recorded(edges=row.edges, new_edges=row.new_edges) for row in rows}
    named = _datasets(records)
    if named["name"]:
        await session.execute(_NOTE_DATASETS, named)
    return [counts.get(ev, Recorded(edges=0, new_edges=0)) for ev in range(len(records))]
