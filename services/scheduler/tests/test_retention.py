"""Retention in the scheduler: runs that ended past the horizon and its grace are deleted with
their attempts, and so are cancellations whose run never came; nothing unfinished goes. Rows
are aged by writing their timestamps into the past, and the rules run once, directly."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import sqlalchemy as sa

from controlroom_devstack.pytest_plugin import running
from controlroom_runtime.retention import prune_once
from controlroom_runtime.service import ServiceRuntime
from controlroom_scheduler.app import create_app
from controlroom_scheduler.store import attempts, pending_cancellations, runs

from .conftest import Rig


async def test_runs_ended_past_the_horizon_go_with_their_attempts_and_the_rest_stay(
    rig: Rig,
) -> None:
    settings = rig.settings()
    kept_for = timedelta(days=settings.run_retention_days + settings.run_purge_grace_days)
    day = timedelta(days=1)
    old, recent, unfinished = uuid4(), uuid4(), uuid4()
    app = create_app(settings)
    async with running(app):
        runtime: ServiceRuntime = app.state.runtime
        async with runtime.sessions.begin() as session:
            # Never routed (no executor kind): nothing dispatches it while the test runs.
            for run_id, status, age in (
                (old, "completed", kept_for + day),
                (recent, "failed", kept_for - day),
                (unfinished, "queued", 3 * kept_for),
            ):
                await session.execute(
                    sa.insert(runs).values(
                        run_id=run_id,
                        tenant_id="t1",
                        job_type="diagram_export",
                        status=status,
                        created_at=sa.func.now() - age,
                        updated_at=sa.func.now() - age,
                    )
                )
            for run_id in (old, recent):
                for attempt in (1, 2):
                    await session.execute(
                        sa.insert(attempts).values(
                            run_id=run_id,
                            attempt=attempt,
                            tenant_id="t1",
                            executor_kind="docker",
                            status="failed",
                            dispatched_at=sa.func.now() - kept_for - day,
                        )
                    )
            for run_id, age in ((uuid4(), kept_for + day), (unfinished, kept_for - day)):
                await session.execute(
                    sa.insert(pending_cancellations).values(
                        run_id=run_id,
                        tenant_id="t1",
                        requested_by="test",
                        requested_at=sa.func.now() - age,
                    )
                )

        # The service's own pass may have run since it started: the state is what counts.
        assert {"runs", "pending_cancellations"} <= {r.name for r in runtime.retention_rules}
        for rule in runtime.retention_rules:
            await prune_once(runtime.sessions, rule)

        async with runtime.sessions() as session:
            left_runs = set((await session.execute(sa.select(runs.c.run_id))).scalars())
            left_attempts = (await session.execute(sa.select(attempts.c.run_id))).scalars()
            left_cancellations = set(
                (await session.execute(sa.select(pending_cancellations.c.run_id))).scalars()
            )
        assert left_runs == {recent, unfinished}
        assert sorted(left_attempts) == [recent, recent]
        assert left_cancellations == {unfinished}
