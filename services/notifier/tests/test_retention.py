"""Retention in the notifier: a run's outcome, callbacks and finished deliveries are deleted
once the run ended past the horizon and its grace; a pending delivery and the callbacks of a
run that has not ended stay. Rows are aged by writing their timestamps into the past, and the
rules run once, directly (the service's own pass may also have run: the state is checked)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa

from controlroom_devstack.pytest_plugin import running
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import NotifierSettings
from controlroom_notifier.store import callbacks, deliveries, outcomes
from controlroom_runtime.retention import prune_once
from controlroom_runtime.service import ServiceRuntime


async def test_what_ended_past_the_horizon_goes_and_pending_deliveries_stay(
    nats_url: str, database_url: str
) -> None:
    settings = NotifierSettings(nats_url=nats_url, database_url=database_url)
    kept_for = timedelta(days=settings.run_retention_days + settings.run_purge_grace_days)
    day = timedelta(days=1)
    old, recent, unfinished = uuid4(), uuid4(), uuid4()
    app = create_app(settings)
    async with running(app):
        runtime: ServiceRuntime = app.state.runtime
        async with runtime.sessions.begin() as session:
            for run_id, age in ((old, kept_for + day), (recent, kept_for - day)):
                await session.execute(
                    sa.insert(outcomes).values(
                        run_id=run_id,
                        tenant_id="t1",
                        status="completed",
                        payload={},
                        recorded_at=sa.func.now() - age,
                    )
                )
            for run_id in (old, recent, unfinished):
                await session.execute(
                    sa.insert(callbacks).values(
                        run_id=run_id,
                        tenant_id="t1",
                        job_type="diagram_export",
                        on_complete="http://127.0.0.1:9/done",
                    )
                )
            # One delivery per kind of the old run, in every state; one delivered recently.
            for run_id, kind, status, age in (
                (old, "delivered", "delivered", kept_for + day),
                (old, "failed", "failed", kept_for + day),
                (old, "pending", "pending", kept_for + day),
                (recent, "delivered", "delivered", kept_for - day),
            ):
                await session.execute(
                    sa.insert(deliveries).values(
                        id=uuid4(),
                        tenant_id="t1",
                        run_id=run_id,
                        kind=kind,
                        url="http://127.0.0.1:9/done",
                        payload={},
                        status=status,
                        created_at=sa.func.now() - age,
                        # Not due while the test runs: the pending one is never attempted.
                        next_attempt_at=sa.func.now() + kept_for,
                    )
                )

        assert {"outcomes", "deliveries"} <= {r.name for r in runtime.retention_rules}
        for rule in runtime.retention_rules:
            await prune_once(runtime.sessions, rule)

        async def left(column: sa.Column[UUID], *also: sa.Column[str]) -> set[tuple[object, ...]]:
            async with runtime.sessions() as session:
                return set(map(tuple, await session.execute(sa.select(column, *also))))

        assert await left(outcomes.c.run_id) == {(recent,)}
        assert await left(callbacks.c.run_id) == {(recent,), (unfinished,)}
        assert await left(deliveries.c.run_id, deliveries.c.status) == {
            (old, "pending"),
            (recent, "delivered"),
        }
