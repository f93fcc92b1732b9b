"""Our own runs as OpenLineage RunEvents, through an outbox.

:meth:`OpenLineageOut.stage` writes the event in the transaction of the state change that
causes it; :meth:`OpenLineageOut.deliver_forever` POSTs it to ``CONTROLROOM_OPENLINEAGE_URL``
the way openlineage-python's HTTP transport does (``urljoin(url, endpoint)``, JSON, bearer
key), retrying with backoff until the receiver takes it or refuses it for good.

At least once: a row is locked while it is sent and marked only after the answer, so a crash
mid-pass sends it again. In order per run: a run's event is picked only once every earlier
event of that run is delivered or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata as package_metadata
from typing import Any, Final, Literal
from urllib.parse import urljoin
from uuid import UUID

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.entities import EntityNameError, openlineage_dataset
from controlroom_contracts.openlineage import OPENLINEAGE_SCHEMA_URL
from controlroom_lineage.settings import LineageSettings
from controlroom_lineage.store import openlineage_outbox as outbox
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.retention import RetentionRule

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return package_metadata.version("controlroom-lineage")
    except package_metadata.PackageNotFoundError:  # a bare checkout
        return "main"


PRODUCER: Final = f"https://github.com/controlroom/controlroom/tree/{_version()}/services/lineage"
BATCH: Final = 100
CONCURRENCY: Final = 16
"""Requests in flight at once in one pass (a pass holds at most one event per run)."""
RETRYABLE_CLIENT_ERRORS: Final = frozenset({408, 429})
"""A 4xx other than these: the receiver refuses the event, sending it again cannot help."""

EventType = Literal["START", "COMPLETE", "FAIL", "ABORT"]

_earlier = outbox.alias("earlier")
_DUE = (
    sa.select(
        outbox.c.id, outbox.c.run_id, outbox.c.event_type, outbox.c.payload, outbox.c.attempts
    )
    .where(
        outbox.c.delivered_at.is_(None),
        outbox.c.failed_at.is_(None),
        outbox.c.next_attempt_at <= sa.func.now(),
        ~sa.exists().where(
            _earlier.c.run_id == outbox.c.run_id,
            _earlier.c.id < outbox.c.id,
            _earlier.c.delivered_at.is_(None),
            _earlier.c.failed_at.is_(None),
        ),
    )
    .order_by(outbox.c.id)
    .with_for_update(of=outbox, skip_locked=True)
)


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None = None
    permanent: bool = False


class OpenLineageOut:
    def __init__(
        self,
        settings: LineageSettings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        poll_interval: float = 1.0,
        batch_size: int = BATCH,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._http: httpx.AsyncClient | None = None
        url = settings.openlineage_url
        self._target = urljoin(url, settings.openlineage_endpoint) if url else None
        self._headers = {"Content-Type": "application/json"}
        if settings.openlineage_api_key is not None:
            key = settings.openlineage_api_key.get_secret_value()
            self._headers["Authorization"] = f"Bearer {key}"

    @property
    def enabled(self) -> bool:
        return self._target is not None

    async def stage(
        self,
        session: AsyncSession,
        *,
        event_type: EventType,
        run_id: UUID,
        tenant_id: str,
        job_name: str,
        event_time: datetime,
        inputs: list[str],
        outputs: list[str],
    ) -> None:
        """Write the run's event to the outbox in the caller's transaction (when enabled)."""
        if not self.enabled:
            return
        if event_time.tzinfo is None:
            event_time = event_time.replace(tzinfo=UTC)
        payload = {
            "eventType": event_type,
            "eventTime": event_time.astimezone(UTC).isoformat(),
            "run": {"runId": str(run_id)},
            "job": {
                "namespace": f"{self._settings.openlineage_namespace}/{tenant_id}",
                "name": job_name or "unnamed",
            },
            "inputs": _datasets(inputs),
            "outputs": _datasets(outputs),
            "producer": PRODUCER,
            "schemaURL": OPENLINEAGE_SCHEMA_URL,
        }
        await session.execute(
            sa.insert(outbox).values(run_id=run_id, event_type=event_type, payload=payload)
        )

    async def deliver_forever(self, stopping: asyncio.Event) -> None:
        """Deliver what is due, pass after pass, until ``stopping``; one HTTP client for all."""
        if not self.enabled:
            return
        async with self._client() as http:
            self._http = http
            try:
                while not stopping.is_set():
                    try:
                        delivered = await self.deliver_once()
                    except Exception:
                        log.warning("OpenLineage delivery pass failed", exc_info=True)
                        delivered = 0
                    if not delivered:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stopping.wait(), timeout=self._poll_interval)
            finally:
                self._http = None

    async def deliver_once(self) -> int:
        """Send one batch of due events and record each answer; how many were delivered."""
        if not self.enabled:
            return 0
        if self._http is not None:
            return await self._pass(self._http)
        async with self._client() as http:
            return await self._pass(http)

    def _client(self) -> httpx.AsyncClient:
        # No keep-alive: with it, a pooled connection was at times left unclosed after the
        # client closed (an "unclosed transport" warning in the tests, cause not found). A few
        # events per run do not need it, and no idle connection to the catalogue goes stale.
        return httpx.AsyncClient(
            timeout=self._settings.openlineage_timeout_seconds,
            limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0),
        )

    async def _pass(self, http: httpx.AsyncClient) -> int:
        # The rows stay locked (FOR UPDATE SKIP LOCKED) until their answers are recorded: no
        # other replica sends them meanwhile, and a crash leaves them pending.
        async with self._sessions.begin() as session:
            rows = (await session.execute(_DUE.limit(self._batch_size))).all()
            if not rows:
                return 0
            slots = asyncio.Semaphore(CONCURRENCY)

            async def send(row: Any) -> _Outcome:
                async with slots:
                    return await self._send(http, row)

            outcomes = await asyncio.gather(*(send(row) for row in rows))
            for row, outcome in zip(rows, outcomes, strict=True):
                await self._record(session, row, outcome)
        return sum(1 for outcome in outcomes if outcome.error is None)

    async def _send(self, http: httpx.AsyncClient, row: Any) -> _Outcome:
        assert self._target is not None
        body = json.dumps(row.payload, separators=(",", ":"))
        try:
            answer = await http.post(self._target, content=body, headers=self._headers)
        except (httpx.HTTPError, OSError) as exc:
            return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        status = answer.status_code
        if answer.is_success:
            return _Outcome(status)
        error = f"{status} {answer.reason_phrase}".strip()[:500]
        return _Outcome(
            status, error, 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS
        )

    async def _record(self, session: AsyncSession, row: Any, outcome: _Outcome) -> None:
        attempts = row.attempts + 1
        now = sa.func.clock_timestamp()
        fields = {"run_id": str(row.run_id), "event_type": row.event_type, "attempts": attempts}
        values: dict[str, Any] = {"attempts": attempts}
        if outcome.error is None:
            values["delivered_at"] = now
            log.debug("OpenLineage event delivered", extra=fields | {"status_code": outcome.status})
        elif outcome.permanent:
            values |= {"failed_at": now, "last_error": outcome.error}
            log.warning(
                "OpenLineage event refused by the receiver",
                extra=fields | {"status_code": outcome.status, "error": outcome.error},
            )
        else:
            delay = exponential_backoff(attempts, cap=self._backoff_cap, base=self._backoff_base)
            delay *= random.uniform(0.5, 1.0)  # jitter: replicas and runs spread out
            values |= {
                "last_error": outcome.error,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
            log.info(
                "OpenLineage event will be retried",
                extra=fields | {"error": outcome.error, "retry_in_s": round(delay, 3)},
            )
        await session.execute(sa.update(outbox).where(outbox.c.id == row.id).values(**values))


def _datasets(entities: list[str]) -> list[dict[str, str]]:
    """Entities as OpenLineage datasets, each once, in the order given."""
    seen: dict[tuple[str, str], None] = {}
    for entity in entities:
        try:
            seen.setdefault(openlineage_dataset(entity), None)
        except EntityNameError:
            log.warning("entity left out of an OpenLineage event", extra={"entity": entity[:200]})
    return [{"namespace": namespace, "name": name} for namespace, name in seen]


def retention_rule(settings: LineageSettings) -> RetentionRule:
    """Delivered and refused events go ``openlineage_retention_days`` after they were staged;
    a pending one is never deleted."""
    finished = sa.or_(outbox.c.delivered_at.is_not(None), outbox.c.failed_at.is_not(None))
    horizon = timedelta(days=settings.openlineage_retention_days)
    return RetentionRule("openlineage_outbox", outbox, "created_at", horizon, where=finished)
