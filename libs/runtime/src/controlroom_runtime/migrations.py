"""Alembic migrations per service schema, applied at start under an advisory lock.

Each service keeps ``migrations/`` (``env.py`` + ``versions/``) inside its package; its
``env.py`` only calls :func:`run_in_alembic_env` with the service's metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from controlroom_runtime import messaging_migrations


def _config(script_location: Path, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # The service's own chain and the runtime's messaging branch, side by side: two heads.
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join((str(script_location / "versions"), str(messaging_migrations.VERSIONS))),
    )
    config.attributes["schema"] = schema
    return config


def run_in_alembic_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py`` (online mode only)."""
    from alembic import context

    connection: Connection | None = context.config.attributes.get("connection")
    schema: str = context.config.attributes["schema"]
    if connection is None:
        raise RuntimeError("migrations run through controlroom_runtime.migrations.upgrade")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
    )
    with context.begin_transaction():
        context.run_migrations()


def head_revisions(script_location: Path) -> frozenset[str]:
    """The revisions a fully migrated schema is at: its own chain's head and messaging's."""
    return frozenset(ScriptDirectory.from_config(_config(script_location, "")).get_heads())


async def upgrade(
    engine: AsyncEngine, script_location: Path, schema: str, *, target: str = "heads"
) -> None:
    """Create the schema and apply every migration (up to ``target``: tests of a migration
    start from the revision before it); replicas starting together take turns."""
    config = _config(script_location, schema)

    def _upgrade(sync_conn: Connection) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, target)

    async with engine.connect() as conn:
        # A session-level advisory lock: two replicas never migrate the same schema at once.
        await conn.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": schema})
        try:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.commit()
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": schema})
            await conn.commit()


async def current_revisions(engine: AsyncEngine, schema: str) -> frozenset[str]:
    def _current(sync_conn: Connection) -> frozenset[str]:
        ctx = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema})
        return frozenset(ctx.get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(_current)
