"""The life of one service process: database, migrations, broker, consumers, outbox relay.

A service's ``app.py`` builds a :class:`ServiceRuntime`, registers its consumers, and hands it
to :func:`service_app`, which wraps it in a FastAPI app with ``/healthz``, ``/readyz`` and
``/metrics``. Everything is built in the lifespan; nothing at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import FastAPI
from faststream.nats import NatsBroker
from nats.js.client import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from controlroom_contracts.base import Message
from controlroom_runtime import db, migrations
from controlroom_runtime.consumer import IDLE_WAIT_SECONDS, ConsumerSpec, run_consumer
from controlroom_runtime.health import health_router
from controlroom_runtime.jetstream_publisher import JetStreamPublisher, PublishResult
from controlroom_runtime.logs import configure_logging
from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_runtime.metrics import Metrics
from controlroom_runtime.outbox import Outbox, OutgoingMessage
from controlroom_runtime.retention import RetentionRule, run_retention
from controlroom_runtime.settings import ServiceSettings
from controlroom_runtime.streams import provision_streams
from controlroom_runtime.subscriptions import settle
from controlroom_runtime.tracing import configure_tracing

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

CONSUMER_GRACE_SECONDS = 10.0
"""At stop, how long handlers may finish the messages they hold before they are cancelled."""


class ServiceRuntime:
    """Shared plumbing of one running service. Build it, register consumers, then ``start``."""

    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        metadata: sa.MetaData,
        migrations_dir: Path,
    ) -> None:
        if metadata.schema is None:
            raise ValueError("a service's metadata must name its schema")
        self.name = name
        self.settings = settings
        self.schema: str = metadata.schema
        self.migrations_dir = migrations_dir
        tables = metadata.tables
        outbox_key, inbox_key = f"{self.schema}.outbox", f"{self.schema}.inbox"
        self.outbox_table = tables[outbox_key] if outbox_key in tables else outbox_table(metadata)
        self.inbox_table = tables[inbox_key] if inbox_key in tables else inbox_table(metadata)
        self.metrics = Metrics(name)
        self.broker = NatsBroker(
            settings.nats_url,
            name=f"controlroom-{name}",
            logger=logging.getLogger(f"faststream.{name}"),
            # per-message lines go to DEBUG; our consumers log what happened themselves
            log_level=logging.DEBUG,
            graceful_timeout=10.0,
            max_reconnect_attempts=-1,
        )
        self._js: JetStreamContext | None = None
        self._publisher: JetStreamPublisher | None = None
        self.engine: AsyncEngine = db.create_engine(
            settings.database_url, pool_size=settings.db_pool_size
        )
        self.sessions: async_sessionmaker[AsyncSession] = db.session_factory(self.engine)
        # Same pool; a single statement (a read, or a write that stands alone) needs no
        # BEGIN/COMMIT round trips around it.
        self.autocommit: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.outbox = Outbox(
            self.outbox_table,
            self.sessions,
            self.publish_in_order,
            on_published=lambda n: self.metrics.published.inc(n),
            on_quarantined=lambda n: self.metrics.quarantined.inc(n),
        )
        self._heads = migrations.head_revisions(migrations_dir)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[Callable[[asyncio.Event], Awaitable[None]]] = []
        self._consumers: list[Callable[[asyncio.Event], Awaitable[None]]] = []
        self.consumer_names: list[str] = []
        """The durable consumers this process runs (wiring decides; see ``consume``)."""
        self._consumer_tasks: list[asyncio.Task[None]] = []
        self._consumer_specs: list[ConsumerSpec[Any]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.retention_rules: list[RetentionRule] = [
            RetentionRule(
                "inbox",
                self.inbox_table,
                "handled_at",
                timedelta(days=settings.inbox_retention_days),
            )
        ]
        self._started = False

    # -- wiring ---------------------------------------------------------------------------
    def consume(self, spec: ConsumerSpec[M]) -> None:
        """Register a durable pull consumer, created (idempotently) when the service starts."""
        self.consumer_names.append(spec.name)
        self._consumer_specs.append(spec)
        self._consumers.append(
            lambda stopping: run_consumer(self, spec, stopping, grace=CONSUMER_GRACE_SECONDS)
        )

    def background(self, factory: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run ``factory(stopping)`` as a task for the life of the service."""
        if self._started:
            self._tasks.append(asyncio.create_task(self._guard(factory)))
        else:
            self._pending.append(factory)

    def retain(self, rule: RetentionRule) -> None:
        """Prune the service's own rows by ``rule`` (see ``controlroom_runtime.retention``)."""
        self.retention_rules.append(rule)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` at stop, once consumers have finished and before background
        tasks are cancelled (while the database and broker are still there)."""
        self._on_stop.append(callback)

    async def _guard(self, factory: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        try:
            await factory(self._stopping)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task crashed", extra={"service": self.name})

    # -- messaging ------------------------------------------------------------------------
    @property
    def jetstream(self) -> JetStreamContext:
        """One JetStream context for the connection (made once connected, then reused)."""
        if self._js is None:
            self._js = self.broker.connection.jetstream()
        return self._js

    async def publish_in_order(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        """Publish to JetStream, pipelined, in order; which messages the stream stored."""
        if self._publisher is None:
            raise RuntimeError("the service has not started")
        return await self._publisher(messages)

    async def publish_now(self, message: OutgoingMessage) -> None:
        """Publish to JetStream and wait for the stream's ack (raises if not stored)."""
        await self.jetstream.publish(
            message.subject, message.payload, headers=message.headers, timeout=5.0
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await migrations.upgrade(self.engine, self.migrations_dir, self.schema)
        await self.broker.connect()
        self._publisher = JetStreamPublisher(self.broker.connection)
        await self._publisher.start()
        await provision_streams(self.jetstream)
        await self.broker.start()
        # Every subscription above is live on the server before the service reports started
        # (a request sent right after would otherwise find no one listening).
        await settle(self.broker.connection)
        # Every durable consumer exists before the service reports started: one that starts
        # at new messages would otherwise miss those published while its task got going.
        for spec in self._consumer_specs:
            await self.jetstream.add_consumer(spec.stream, spec.consumer_config())
        self._started = True
        self._tasks.append(
            asyncio.create_task(
                self._guard(
                    lambda stopping: self.outbox.run_relay(
                        self.settings.outbox_relay_interval_seconds, stopping
                    )
                )
            )
        )
        self._tasks.append(
            asyncio.create_task(
                self._guard(
                    lambda stopping: run_retention(
                        self.sessions,
                        self.retention_rules,
                        self.settings.retention_interval_seconds,
                        stopping,
                    )
                )
            )
        )
        self._consumer_tasks = [
            asyncio.create_task(self._guard(factory)) for factory in self._consumers
        ]
        for factory in self._pending:
            self._tasks.append(asyncio.create_task(self._guard(factory)))
        self._pending.clear()
        log.info("service started", extra={"service": self.name})

    async def stop(self) -> None:
        self._stopping.set()
        if self._consumer_tasks:
            # Consumers notice ``stopping`` within a pull's wait and finish what they hold.
            _done, unfinished = await asyncio.wait(
                self._consumer_tasks, timeout=CONSUMER_GRACE_SECONDS + IDLE_WAIT_SECONDS + 1
            )
            for task in unfinished:
                task.cancel()
        for callback in self._on_stop:
            try:
                await callback()
            except Exception:
                log.exception("stop callback failed", extra={"service": self.name})
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.outbox.finish_publishing()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.engine.dispose()
        log.info("service stopped", extra={"service": self.name})

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the service begins to stop."""
        return self._stopping

    async def dependencies_reachable(self) -> bool:
        """Whether Postgres answers and NATS is connected, right now (a quick probe)."""
        try:
            connected = self.broker.connection.is_connected
            async with self.autocommit.connect() as conn:
                await asyncio.wait_for(conn.execute(sa.text("SELECT 1")), timeout=3.0)
        except Exception:
            return False
        return bool(connected)

    # -- readiness ------------------------------------------------------------------------
    async def readiness(self) -> dict[str, str]:
        """Each dependency's state; the service is ready when every value is ``ok``."""
        checks: dict[str, str] = {}
        try:
            connected = self.broker.connection.is_connected
        except Exception:
            connected = False
        checks["nats"] = "ok" if connected else "unreachable"
        try:
            revisions = await asyncio.wait_for(
                migrations.current_revisions(self.engine, self.schema), timeout=3.0
            )
            checks["postgres"] = "ok"
            checks["migrations"] = (
                "ok" if revisions == self._heads else f"at {', '.join(sorted(revisions))}"
            )
        except Exception as exc:
            checks["postgres"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown"
            return checks
        checks["outbox"] = await self._outbox_state()
        return checks

    async def _outbox_state(self) -> str:
        """``ok``, or how long the oldest unpublished message has waited past the limit."""
        try:
            age = await asyncio.wait_for(self.outbox.oldest_unpublished_age(), timeout=3.0)
        except Exception as exc:
            return f"unknown: {type(exc).__name__}"
        if age is not None and age > self.settings.outbox_stall_seconds:
            return f"stalled: the oldest unpublished message is {age:.0f}s old"
        return "ok"


def service_app(
    name: str,
    settings: ServiceSettings,
    build: Callable[[], ServiceRuntime],
    *,
    title: str | None = None,
    configure: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan builds the runtime with ``build``, starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level)
        configure_tracing(f"controlroom-{name}")
        runtime = build()
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=title or f"Control Room {name}",
        lifespan=lifespan,
        # One server span per request carries the trace into logs and published events.
        # FastAPI's spans around every dependency, endpoint and serialisation cost about a
        # fifth of the gateway's CPU per request and say nothing the server span does not;
        # metrics come from prometheus-client and errors from our own logs.
        telemetry={"operation_spans": False, "metrics": False, "logs": False},
    )
    app.include_router(health_router())
    if configure is not None:
        configure(app)
    return app
