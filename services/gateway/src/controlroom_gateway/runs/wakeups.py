"""Wake this process's live streams when events of their runs commit.

Whoever appends a run's history notifies in the same transaction (``run_notices``). The API
process LISTENs on one connection of its own, not one per stream, and sets the wake-up of every
stream waiting on a run (or on a whole tenant) the notice names. A wake-up is only a hint to
re-read: a stream reads from its last event id, so a spurious one costs a query, and notices
lost while no connection listened are made up for by waking every stream once LISTEN is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar
from uuid import UUID

# asyncpg ships no type information; the few calls made here are checked by the tests.
import asyncpg
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from controlroom_gateway.read_model.run_notices import CHANNEL, RunEventsAppended
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.waiting import first_of

log = logging.getLogger(__name__)

LISTENER_NAME = "controlroom-gateway-wakeups"
"""The LISTEN connection's ``application_name``, to find it in ``pg_stat_activity``."""

PING_SECONDS = 10.0
"""A connection that died without a word (a half-open TCP connection) is found by a ping."""

RECONNECT_CAP_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0

K = TypeVar("K")


class Wake:
    """One stream's wake-up: set when its run may have new events."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> None:
        """Return once woken or after ``timeout`` seconds, and take the wake-up: one that
        comes while the stream reads makes the next wait return at once."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._event.wait()
        self._event.clear()


class RunWakeups:
    """The streams waiting in this process, and the LISTEN connection that wakes them."""

    def __init__(self, database_url: str) -> None:
        # asyncpg takes a plain libpq DSN; the settings hold SQLAlchemy's driver URL.
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._by_run: dict[tuple[str, UUID], set[Wake]] = {}
        self._by_tenant: dict[str, set[Wake]] = {}
        self.connected = False
        """Whether notices reach this process now (streams fall back to their safety poll)."""

    # -- streams ------------------------------------------------------------------------
    @contextmanager
    def watch_run(self, tenant_id: str, run_id: UUID) -> Iterator[Wake]:
        """A wake-up set whenever the run's history may have grown, while the block runs."""
        with _watching(self._by_run, (tenant_id, run_id)) as wake:
            yield wake

    @contextmanager
    def watch_tenant(self, tenant_id: str) -> Iterator[Wake]:
        """A wake-up set whenever the history of any of the tenant's runs may have grown."""
        with _watching(self._by_tenant, tenant_id) as wake:
            yield wake

    def wake_everyone(self) -> None:
        for waiting in (*self._by_run.values(), *self._by_tenant.values()):
            for wake in waiting:
                wake.set()

    def _on_notice(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = RunEventsAppended.model_validate_json(payload)
        except ValidationError:
            log.warning(
                "unreadable run notice; waking every stream", extra={"notice": payload[:200]}
            )
            notice = RunEventsAppended(everyone=True)
        if notice.everyone:
            self.wake_everyone()
            return
        for tenant_id, run_ids in notice.runs.items():
            for wake in self._by_tenant.get(tenant_id, ()):
                wake.set()
            for run_id in run_ids:
                for wake in self._by_run.get((tenant_id, run_id), ()):
                    wake.set()

    # -- the connection -----------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        """LISTEN until ``stopping``; reconnect with backoff whenever the connection is lost."""
        failures = 0
        while not stopping.is_set():
            try:
                await self._listen(stopping)
                failures = 0  # it was up, then lost: try again shortly
            except Exception as exc:
                # Whatever broke (Postgres down, restarting, refusing us), the remedy is the
                # same: a new connection, later; meanwhile streams keep their safety poll.
                failures += 1
                log.warning(
                    "cannot LISTEN for run events; retrying",
                    extra={"error": type(exc).__name__, "failures": failures},
                )
            delay = exponential_backoff(failures + 1, cap=RECONNECT_CAP_SECONDS, base=0.1)
            await first_of(stopping, timeout=delay)

    async def _listen(self, stopping: asyncio.Event) -> None:
        """Hold one LISTEN connection until it is lost or the service stops."""
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": LISTENER_NAME},
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._on_notice)
            self.connected = True
            log.info("listening for run events", extra={"channel": CHANNEL})
            # Notices sent while no connection listened are gone: every stream re-reads.
            self.wake_everyone()
            while True:
                await first_of(lost, stopping, timeout=PING_SECONDS)
                if stopping.is_set():
                    return
                if lost.is_set():
                    log.warning("the LISTEN connection was lost; reconnecting")
                    return
                await connection.fetchval("SELECT 1", timeout=PING_SECONDS)
        finally:
            self.connected = False
            if not connection.is_closed():
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)


@contextmanager
def _watching(registry: dict[K, set[Wake]], key: K) -> Iterator[Wake]:
    wake = Wake()
    registry.setdefault(key, set()).add(wake)
    try:
        yield wake
    finally:
        waiting = registry[key]
        waiting.discard(wake)
        if not waiting:
            del registry[key]
