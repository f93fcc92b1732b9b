"""Recording runs in batches is recording them one at a time, and group commit batches what
arrives together."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_lineage.app import MIGRATIONS
from controlroom_lineage.group_commit import GroupCommit
from controlroom_lineage.recording import Recorded, RunRecord, record_runs
from controlroom_runtime import db, migrations

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = db.create_engine(database_url)
    await migrations.upgrade(engine, MIGRATIONS, "lineage")
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


def _runs(tenant: str, seed: int, count: int) -> list[RunRecord]:
    """Runs of a few jobs over a few tables, with repeats: the same run twice, a run whose
    source is also its target, runs arriving out of time order."""
    rng = random.Random(seed)
    tables = [f"s.t{i}" for i in range(8)]
    runs: list[RunRecord] = []
    for _ in range(count):
        if runs and rng.random() < 0.15:
            runs.append(rng.choice(runs))  # redelivered: must change nothing
            continue
        runs.append(
            RunRecord(
                tenant_id=tenant,
                job=rng.choice(["a", "b", "c"]),
                origin="openlineage",
                run_id=uuid4(),
                at=T0 + timedelta(minutes=rng.randrange(100)),
                actor="tester",
                sources=rng.sample(tables, rng.randint(1, 3)),
                targets=rng.sample(tables, rng.randint(1, 2)),
            )
        )
    return runs


def _as_tenant(runs: Sequence[RunRecord], tenant: str) -> list[RunRecord]:
    return [
        RunRecord(
            tenant_id=tenant,
            job=r.job,
            origin=r.origin,
            run_id=r.run_id,
            at=r.at,
            actor=r.actor,
            sources=r.sources,
            targets=r.targets,
        )
        for r in runs
    ]


async def _state(sessions: Sessions, tenant: str) -> dict[str, Any]:
    async with sessions() as session:
        edges = await session.execute(
            sa.text(
                "SELECT source_entity, target_entity, job_name, run_count, latest_run_id,"
                " latest_run_at, (SELECT count(*) FROM lineage.edge_runs r WHERE r.edge_id = e.id)"
                " AS refs, (SELECT count(*) FROM lineage.edge_audit a WHERE a.edge_id = e.id)"
                " AS audited FROM lineage.edges e WHERE tenant_id = :t ORDER BY 1, 2, 3"
            ),
            {"t": tenant},
        )
        datasets = await session.execute(
            sa.text(
                "SELECT entity, first_seen_at, last_produced_run_id, last_produced_job,"
                " last_produced_at, last_consumed_run_id, last_consumed_job, last_consumed_at"
                " FROM lineage.datasets WHERE tenant_id = :t ORDER BY 1"
            ),
            {"t": tenant},
        )
        return {"edges": [tuple(r) for r in edges], "datasets": [tuple(r) for r in datasets]}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_records_what_one_run_at_a_time_records(
    sessions: Sessions, seed: int
) -> None:
    runs = _runs("one", seed, 60)
    single: list[Recorded] = []
    for run in runs:
        async with sessions.begin() as session:
            single.extend(await record_runs(session, [run]))

    batched_runs = _as_tenant(runs, "many")
    batched: list[Recorded] = []
    for start in range(0, len(batched_runs), 17):
        async with sessions.begin() as session:
            batched.extend(await record_runs(session, batched_runs[start : start + 17]))

    # Ties in time are broken by order within a batch and by arrival one at a time alike, so
    # the two states agree exactly, the latest run of each edge and dataset included.
    assert await _state(sessions, "one") == await _state(sessions, "many")
    assert [r.edges for r in single] == [r.edges for r in batched]
    assert sum(r.new_edges for r in single) == sum(r.new_edges for r in batched)
    assert sum(r.new_edges for r in single) == len((await _state(sessions, "one"))["edges"])
    repeated = [i for i, r in enumerate(runs) if runs.index(r) != i]
    assert repeated and all(single[i] == Recorded(edges=0, new_edges=0) for i in repeated)


async def test_group_commit_writes_what_arrives_together_in_one_batch() -> None:
    written: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        written.append(list(items))
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(write, max_batch=8)
    results = await asyncio.gather(*(commit.submit(i) for i in range(20)))
    assert results == [i * 10 for i in range(20)]
    assert sorted(i for batch in written for i in batch) == list(range(20))
    assert written[0] == [0] and all(len(b) <= 8 for b in written) and len(written) < 20


async def test_a_failed_batch_fails_each_of_its_requests_and_the_next_batch_goes_on() -> None:
    calls = 0

    async def write(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 2:
            raise RuntimeError("database gone")
        return list(items)

    commit: GroupCommit[str, str] = GroupCommit(write)
    outcomes = await asyncio.gather(
        *(commit.submit(str(i)) for i in range(6)), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert outcomes[0] == "0" and len(failed) == 5  # the second batch held the other five
    assert await commit.submit("after") == "after"


async def test_a_cancelled_writer_leaves_no_request_of_its_batch_waiting() -> None:
    batches: list[list[int]] = []
    stuck = asyncio.Event()

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await asyncio.sleep(0.01)  # while it writes, 2 and 3 gather for the next batch
        else:
            stuck.set()
            await asyncio.sleep(3600)
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(write)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(commit.submit(2))
    third = asyncio.create_task(commit.submit(3))
    assert await first == 1
    await stuck.wait()
    assert batches == [[1], [2, 3]]
    writer, peer = (second, third)  # the second request writes the batch it is in
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    with pytest.raises(RuntimeError, match="abandoned"):
        await asyncio.wait_for(peer, timeout=5)
