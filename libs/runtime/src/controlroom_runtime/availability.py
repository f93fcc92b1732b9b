"""Telling an outage from a poison message.

A handler that fails because Postgres, NATS or the object store cannot be reached says
nothing about the message: it would fail for every message. Such failures are waited out
(the message kept in progress, its delivery not counted) instead of counting toward the
limit after which a message is dead-lettered.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import asyncpg.exceptions
import nats.errors
import sqlalchemy.exc

_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
    }
)

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,  # asyncio's and nats-py's timeouts too
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # no connection free in the pool
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
    asyncpg.exceptions.CannotConnectNowError,  # starting up, or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what led to it (``raise ... from``, the exception being handled, and a
    SQLAlchemy error's driver exception), each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [
            e
            for e in (current.__cause__, current.__context__, orig)
            if isinstance(e, BaseException)
        ]


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency is out of reach rather than the message is bad."""
    for cause in _causes(exc):
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, _UNAVAILABLE):
            return True
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return True
    return False
