"""Async SQLAlchemy engine and sessions; built in a service's lifespan, disposed at stop."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No overflow: a burst waits for a pooled connection instead of forking short-lived
    # Postgres backends (connection churn cost more CPU than the queries under load).
    # No pre-ping: it is a round trip per transaction; a dropped connection fails its
    # transaction, the message is redelivered, and the pool replaces the connection.
    return _create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_timeout=30, pool_recycle=1800
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
