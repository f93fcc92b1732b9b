"""Alembic migrations per service schema, applied at start under an advisory lock.

Each service keeps ``migrations/`` (``env.py`` + ``versions/``) inside its package; its
``env.py`` only calls :func:`run_in_alembic_env` with the service's metadata.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine


def _config(script_location: Path, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
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


def head_revision(script_location: Path) -> str | None:
    return ScriptDirectory.from_config(_config(script_location, "")).get_current_head()


async def upgrade(engine: AsyncEngine, script_location: Path, schema: str) -> None:
    """Create the schema and apply every migration; replicas starting together take turns."""
    config = _config(script_location, schema)

    def _upgrade(sync_conn: Connection) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, "head")

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


async def current_revision(engine: AsyncEngine, schema: str) -> str | None:
    def _current(sync_conn: Connection) -> str | None:
        ctx = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema})
        return ctx.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)
