"""Run wake-ups: one LISTEN connection per API process, fanned out to the streams waiting in it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from controlroom_devstack.waiting import eventually
from controlroom_gateway.read_model import run_notices
from controlroom_gateway.runs.wakeups import LISTENER_NAME, RunWakeups


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def wakeups(database_url: str) -> AsyncIterator[RunWakeups]:
    wakeups = RunWakeups(database_url)
    stopping = asyncio.Event()
    task = asyncio.create_task(wakeups.run(stopping))
    yield wakeups
    stopping.set()
    await asyncio.wait_for(task, timeout=15)


async def listener_pids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LISTENER_NAME},
        )
        return [row.pid for row in rows]


async def test_committed_notices_wake_their_runs_and_tenants_and_rolled_back_ones_do_not(
    wakeups: RunWakeups, engine: AsyncEngine
) -> None:
    # Connected before anyone watches: connecting wakes every watcher, once.
    await eventually(lambda: _connected(wakeups), what="the listener to be connected")
    mine, rolled_back, unrelated = uuid4(), uuid4(), uuid4()
    with (
        wakeups.watch_run("acme", mine) as run_wake,
        wakeups.watch_run("acme", rolled_back) as rolled_back_wake,
        wakeups.watch_run("acme", unrelated) as unrelated_wake,
        wakeups.watch_tenant("globex") as tenant_wake,
    ):
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await run_notices.announce(connection, [("acme", rolled_back)])
            await transaction.rollback()
        async with engine.begin() as connection:
            await run_notices.announce(connection, [("acme", mine), ("globex", uuid4())])

        async def woken() -> bool:
            return run_wake.is_set() and tenant_wake.is_set()

        await eventually(woken, what="the committed notice to wake its run and tenant")
        # Notices arrive in commit order: the rolled-back one would have come first.
        assert not rolled_back_wake.is_set()
        assert not unrelated_wake.is_set()


async def test_a_lost_listen_connection_is_reopened_and_every_waiting_stream_woken(
    wakeups: RunWakeups, engine: AsyncEngine
) -> None:
    await eventually(lambda: _connected(wakeups), what="the listener to be connected")
    (first,) = await listener_pids(engine)
    run_id = uuid4()
    with wakeups.watch_run("acme", run_id) as wake:
        assert not wake.is_set()
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})

        # Nothing was announced: the wake-up says "re-read, you may have missed something".
        async def woken_again() -> bool:
            return wake.is_set()

        await eventually(woken_again, what="every stream to be woken after a reconnect")

        async def reconnected() -> list[int] | None:
            pids = await listener_pids(engine)
            return pids if pids and first not in pids else None

        await eventually(reconnected, what="a new LISTEN connection")
        await wake.wait(timeout=0)  # consumes the wake-up
        assert not wake.is_set()
        async with engine.begin() as connection:
            await run_notices.announce(connection, [("acme", run_id)])
        await eventually(woken_again, what="the new connection to deliver notices")


async def _connected(wakeups: RunWakeups) -> bool:
    return wakeups.connected


def test_notice_payloads_stay_under_the_postgres_limit_and_name_every_run() -> None:
    runs = [(f"tenant-{i % 3}", uuid4()) for i in range(1000)]
    payloads = run_notices.payloads(runs)
    assert len(payloads) > 1
    assert all(len(p.encode()) < run_notices.MAX_PAYLOAD_BYTES for p in payloads)
    named = {
        (tenant, str(run_id))
        for payload in payloads
        for tenant, run_ids in json.loads(payload)["runs"].items()
        for run_id in run_ids
    }
    assert named == {(tenant, str(run_id)) for tenant, run_id in runs}
    # A tenant id too long to name in a notice still wakes its streams: everyone's.
    (everyone,) = run_notices.payloads([("t" * 9000, uuid4())])
    assert json.loads(everyone)["everyone"] is True
