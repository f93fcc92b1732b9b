"""Each service's migrations produce exactly the tables its code declares."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from controlroom_executor_docker import app as executor_docker_app
from controlroom_executor_docker.store import metadata as executor_docker
from controlroom_executor_k8s import app as executor_k8s_app
from controlroom_executor_k8s.store import metadata as executor_k8s
from controlroom_gateway import app as gateway_app
from controlroom_gateway.read_model.store import metadata as gateway
from controlroom_lineage import app as lineage_app
from controlroom_lineage.store import metadata as lineage
from controlroom_notifier import app as notifier_app
from controlroom_notifier.store import metadata as notifier
from controlroom_runtime import db, migrations
from controlroom_scheduler import app as scheduler_app
from controlroom_scheduler.store import metadata as scheduler

MIGRATIONS = {
    "gateway": gateway_app.MIGRATIONS,
    "scheduler": scheduler_app.MIGRATIONS,
    "executor_docker": executor_docker_app.MIGRATIONS,
    "executor_k8s": executor_k8s_app.MIGRATIONS,
    "lineage": lineage_app.MIGRATIONS,
    "notifier": notifier_app.MIGRATIONS,
}

SERVICES = {
    "gateway": gateway,
    "scheduler": scheduler,
    "executor_docker": executor_docker,
    "executor_k8s": executor_k8s,
    "lineage": lineage,
    "notifier": notifier,
}


def _migrations_dir(metadata: sa.MetaData) -> Path:
    return MIGRATIONS[str(metadata.schema)]


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_migrations_match_the_declared_schema_and_apply_twice(
    name: str, database_url: str
) -> None:
    metadata = SERVICES[name]
    assert metadata.schema is not None
    engine = db.create_engine(database_url)
    try:
        await migrations.upgrade(engine, _migrations_dir(metadata), metadata.schema)
        await migrations.upgrade(engine, _migrations_dir(metadata), metadata.schema)  # idempotent

        def diff(conn: sa.Connection) -> list[object]:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_name": lambda n, t, _p: t != "schema" or n == metadata.schema,
                    "version_table_schema": metadata.schema,
                },
            )
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
        heads = migrations.head_revisions(_migrations_dir(metadata))
        assert len(heads) == 2  # the service's own chain and the messaging branch
        assert await migrations.current_revisions(engine, metadata.schema) == heads
    finally:
        await engine.dispose()


async def test_a_schema_migrated_before_the_messaging_branch_keeps_its_outbox_rows(
    database_url: str,
) -> None:
    """A schema whose outbox and inbox came from the service's own migrations (as every schema
    did before the messaging branch) is adopted by the branch, rows and all."""
    metadata = SERVICES["lineage"]
    schema = str(metadata.schema)
    engine = db.create_engine(database_url)
    try:
        await migrations.upgrade(engine, _migrations_dir(metadata), schema)
        async with engine.begin() as conn:
            # Back to the shape of then: no branch recorded, no quarantine columns, a row.
            await conn.execute(
                sa.text(f"DELETE FROM {schema}.alembic_version WHERE version_num LIKE 'm%'")
            )
            for index in ("ix_outbox_pending", "ix_inbox_handled_at"):
                await conn.execute(sa.text(f"DROP INDEX {schema}.{index}"))
            for column in ("quarantined_at", "quarantine_reason"):
                await conn.execute(sa.text(f"ALTER TABLE {schema}.outbox DROP COLUMN {column}"))
            await conn.execute(
                sa.text(
                    f"INSERT INTO {schema}.outbox (id, subject, payload, headers) "
                    "VALUES (gen_random_uuid(), 'controlroom.events.x', 'x', '{}')"
                )
            )
        assert len(await migrations.current_revisions(engine, schema)) == 1

        await migrations.upgrade(engine, _migrations_dir(metadata), schema)

        heads = migrations.head_revisions(_migrations_dir(metadata))
        assert await migrations.current_revisions(engine, schema) == heads
        async with engine.connect() as conn:
            kept = await conn.scalar(
                sa.text(f"SELECT count(*) FROM {schema}.outbox WHERE quarantined_at IS NULL")
            )
        assert kept == 1
    finally:
        await engine.dispose()


async def test_lineage_edges_of_the_former_identity_fold_into_one_per_job(
    database_url: str,
) -> None:
    """Before 0004 an edge was one per (run, source, target); after it, one per (tenant,
    source, target, job) with every run as a reference, and nothing of the record lost."""
    metadata = SERVICES["lineage"]
    engine = db.create_engine(database_url)
    runs = [uuid4() for _ in range(3)]
    try:
        await migrations.upgrade(engine, _migrations_dir(metadata), "lineage", target="0003")
        async with engine.begin() as conn:
            for i, run_id in enumerate(runs):  # one job, three runs
                await conn.execute(
                    sa.text(
                        "INSERT INTO lineage.edges (id, tenant_id, source_entity, target_entity,"
                        " run_id, job_type, created_at, deleted_at) VALUES (gen_random_uuid(),"
                        " 't1', 'raw.a', 'gold.a', :run, 'spark_etl',"
                        " now() - make_interval(days => :age), NULL)"
                    ),
                    {"run": run_id, "age": 3 - i},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO lineage.edges (id, tenant_id, source_entity, target_entity,"
                    " run_id, created_by, deleted_at) VALUES (gen_random_uuid(), 't1', 'crm.x',"
                    " 'raw.a', NULL, 'admin-1', now())"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO lineage.declared_io (run_id, tenant_id, job_type, source_entity,"
                    " target_entity, submitted) VALUES (:run, 't1', 'spark_etl', 'raw.a', NULL,"
                    " true)"
                ),
                {"run": uuid4()},
            )

        await migrations.upgrade(engine, _migrations_dir(metadata), "lineage")

        async with engine.connect() as conn:
            edges = (
                await conn.execute(
                    sa.text(
                        "SELECT source_entity, job_name, origin, run_count, latest_run_id,"
                        " deleted_at IS NOT NULL AS deleted FROM lineage.edges"
                        " ORDER BY source_entity"
                    )
                )
            ).all()
            assert [tuple(e) for e in edges] == [
                ("crm.x", "manual", "manual", 0, None, True),
                ("raw.a", "spark_etl", "run", 3, runs[-1], False),
            ]
            referenced = await conn.scalar(sa.text("SELECT count(*) FROM lineage.edge_runs"))
            assert referenced == 3
            audited = await conn.scalar(
                sa.text("SELECT count(*) FROM lineage.edge_audit WHERE action = 'created'")
            )
            assert audited == 2
            named = (
                await conn.execute(sa.text("SELECT entity FROM lineage.datasets ORDER BY 1"))
            ).scalars()
            assert list(named) == ["crm.x", "gold.a", "raw.a"]
            declared = (
                await conn.execute(sa.text("SELECT sources, targets FROM lineage.declared_io"))
            ).one()
            assert tuple(declared) == (["raw.a"], [])
    finally:
        await engine.dispose()
