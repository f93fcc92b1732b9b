"""Each service's migrations produce exactly the tables its code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from controlroom_executor_docker import app as executor_docker_app
from controlroom_executor_docker.store import metadata as executor_docker
from controlroom_executor_k8s import app as executor_k8s_app
from controlroom_executor_k8s.store import metadata as executor_k8s
from controlroom_gateway import app as gateway_app
from controlroom_gateway.store import metadata as gateway
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
        assert await migrations.current_revision(
            engine, metadata.schema
        ) == migrations.head_revision(_migrations_dir(metadata))
    finally:
        await engine.dispose()
