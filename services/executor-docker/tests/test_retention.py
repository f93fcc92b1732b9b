"""Retention in an executor: attempts that finished past the horizon and its grace are deleted,
and so are old cancellations; an attempt still running stays, however old. Rows are aged by
writing their timestamps into the past, and the rules run once, directly (the service's own
pass may also have run as it started: the state is checked)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa

from controlroom_devstack.pytest_plugin import running
from controlroom_executor_docker.app import create_app
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_executor_docker.store import tables
from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_runtime.retention import prune_once
from controlroom_runtime.service import ServiceRuntime


async def test_attempts_finished_past_the_horizon_go_and_running_ones_stay(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = ExecutorDockerSettings(
        nats_url=nats_url,
        database_url=database_url,
        job_backend="local",
        executor_workdir=tmp_path / "work",
        executor_id="exec-test",
        object_store=ObjectStoreSettings(directory=tmp_path / "objects"),
    )
    kept_for = timedelta(days=settings.run_retention_days + settings.run_purge_grace_days)
    day = timedelta(days=1)
    old, recent, running_run = uuid4(), uuid4(), uuid4()
    app = create_app(settings)
    async with running(app):
        runtime: ServiceRuntime = app.state.runtime
        async with runtime.sessions.begin() as session:
            for run_id, status, finished in (
                (old, "completed", sa.func.now() - kept_for - day),
                (recent, "failed", sa.func.now() - kept_for + day),
                (running_run, "running", None),
            ):
                await session.execute(
                    sa.insert(tables.attempts).values(
                        run_id=run_id,
                        attempt=1,
                        tenant_id="t1",
                        # Another executor's: this one's recovery leaves it alone.
                        executor_id="exec-elsewhere",
                        status=status,
                        started_at=sa.func.now() - 3 * kept_for,
                        finished_at=finished,
                    )
                )
            for run_id, age in ((old, kept_for + day), (recent, kept_for - day)):
                await session.execute(
                    sa.insert(tables.cancellations).values(
                        run_id=run_id, tenant_id="t1", requested_at=sa.func.now() - age
                    )
                )

        assert {"attempts", "cancellations"} <= {r.name for r in runtime.retention_rules}
        for rule in runtime.retention_rules:
            await prune_once(runtime.sessions, rule)

        async with runtime.sessions() as session:
            attempts = set((await session.execute(sa.select(tables.attempts.c.run_id))).scalars())
            cancellations = set(
                (await session.execute(sa.select(tables.cancellations.c.run_id))).scalars()
            )
        assert attempts == {recent, running_run}
        assert cancellations == {recent}
