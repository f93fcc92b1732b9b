"""OpenLineage out: the outbox against a real Postgres, delivered to a real local HTTP server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controlroom_contracts.entities import openlineage_dataset
from controlroom_contracts.openlineage import OPENLINEAGE_SCHEMA_URL
from controlroom_devstack.infra import free_port
from controlroom_devstack.waiting import eventually
from controlroom_lineage.app import MIGRATIONS
from controlroom_lineage.openlineage_out import PRODUCER, OpenLineageOut, retention_rule
from controlroom_lineage.settings import LineageSettings
from controlroom_lineage.store import openlineage_outbox
from controlroom_runtime import db, migrations
from controlroom_runtime.retention import prune_once

Sessions = async_sessionmaker[AsyncSession]
INPUTS = ["raw.orders", "s3://lake/bronze/orders.parquet"]
OUTPUTS = ["silver.orders"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.body["run"]["runId"], self.body["eventType"]


@dataclass
class Receiver:
    """Records every POST; ``answer`` picks each one's status from its body (default 201)."""

    answer: Callable[[dict[str, Any]], int] = lambda _body: 201
    delay: float = 0.0
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self) -> list[tuple[str, str]]:
        return [r.key for r in self.received]

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(Received(request.url.path, dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)  # so that two passes overlap
        return Response(status_code=self.answer(body))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=receiver.port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _true(server.started), what="receiver started")
    yield receiver
    server.should_exit = True
    await task


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = db.create_engine(database_url)
    await migrations.upgrade(engine, MIGRATIONS, "lineage")
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


def _settings(url: str | None, **more: Any) -> LineageSettings:
    return LineageSettings(openlineage_url=url, **more)


def _fast(settings: LineageSettings, sessions: Sessions, **more: Any) -> OpenLineageOut:
    return OpenLineageOut(
        settings, sessions, backoff_base=0.01, backoff_cap=0.02, poll_interval=0.05, **more
    )


async def _stage(
    out: OpenLineageOut,
    sessions: Sessions,
    event_type: Any,
    run_id: UUID,
    *,
    tenant: str = "acme",
    at: datetime | None = None,
) -> None:
    async with sessions.begin() as session:  # one transaction per event, as a handler's
        await out.stage(
            session,
            event_type=event_type,
            run_id=run_id,
            tenant_id=tenant,
            job_name="nightly_orders",
            event_time=at or datetime.now(UTC),
            inputs=INPUTS,
            outputs=OUTPUTS,
        )


async def _rows(sessions: Sessions) -> list[sa.Row[Any]]:
    async with sessions() as session:
        query = sa.select(openlineage_outbox).order_by(openlineage_outbox.c.id)
        return list((await session.execute(query)).all())


async def _drain(out: OpenLineageOut, sessions: Sessions) -> list[sa.Row[Any]]:
    """Deliver until no row is pending."""

    async def settled() -> list[sa.Row[Any]] | None:
        await out.deliver_once()
        rows = await _rows(sessions)
        pending = [r for r in rows if r.delivered_at is None and r.failed_at is None]
        return None if pending else rows

    return await eventually(settled, what="every event delivered or refused")


def _datasets(entities: list[str]) -> list[dict[str, str]]:
    return [dict(zip(("namespace", "name"), openlineage_dataset(e), strict=True)) for e in entities]


def test_settings_read_from_the_documented_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_URL", "http://marquez:5000")
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_API_KEY", "k")
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_ENDPOINT", "v2/lineage")
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_NAMESPACE", "cr")
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_RETENTION_DAYS", "3")
    settings = LineageSettings()
    assert settings.openlineage_url == "http://marquez:5000"
    assert settings.openlineage_api_key is not None
    assert settings.openlineage_api_key.get_secret_value() == "k"
    assert (settings.openlineage_endpoint, settings.openlineage_namespace) == ("v2/lineage", "cr")
    assert settings.openlineage_timeout_seconds == 2.5
    assert settings.openlineage_retention_days == 3
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_URL", "")
    assert LineageSettings().openlineage_url is None
    monkeypatch.setenv("CONTROLROOM_OPENLINEAGE_URL", "marquez:5000")
    with pytest.raises(ValueError, match="http"):
        LineageSettings()


async def test_start_then_complete_delivered_in_order_and_spec_shaped(
    sessions: Sessions, receiver: Receiver
) -> None:
    settings = _settings(receiver.url, openlineage_api_key="secret-key")
    out = _fast(settings, sessions)
    run_id, started = uuid4(), datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    await _stage(out, sessions, "START", run_id, at=started)
    await _stage(out, sessions, "COMPLETE", run_id, at=started + timedelta(minutes=3))

    # The COMPLETE waits for its START: one event per pass.
    assert [await out.deliver_once() for _ in range(3)] == [1, 1, 0]
    assert receiver.keys() == [(str(run_id), "START"), (str(run_id), "COMPLETE")]
    first = receiver.received[0]
    assert first.path == "/api/v1/lineage"
    assert first.headers["authorization"] == "Bearer secret-key"
    assert first.headers["content-type"] == "application/json"
    body = first.body
    assert body["run"] == {"runId": str(run_id)}
    assert body["job"] == {"namespace": "controlroom/acme", "name": "nightly_orders"}
    assert body["inputs"] == _datasets(INPUTS)
    assert body["inputs"][1] == {"namespace": "s3://lake", "name": "bronze/orders.parquet"}
    assert body["outputs"] == _datasets(OUTPUTS)
    assert (body["producer"], body["schemaURL"]) == (PRODUCER, OPENLINEAGE_SCHEMA_URL)
    assert PRODUCER.startswith("https://")
    event_time = datetime.fromisoformat(body["eventTime"])
    assert event_time.tzinfo is not None and event_time == started
    rows = await _rows(sessions)
    assert [(r.event_type, r.attempts, r.last_error) for r in rows] == [
        ("START", 1, None),
        ("COMPLETE", 1, None),
    ]
    assert all(r.delivered_at is not None and r.failed_at is None for r in rows)


async def test_retried_after_503_and_later_events_of_the_run_wait(
    sessions: Sessions, receiver: Receiver
) -> None:
    run_id = uuid4()
    seen: Counter[tuple[str, str]] = Counter()

    def answer(body: dict[str, Any]) -> int:
        key = (body["run"]["runId"], body["eventType"])
        seen[key] += 1
        return 503 if key[1] == "START" and seen[key] <= 2 else 201

    receiver.answer = answer
    out = _fast(_settings(receiver.url), sessions)
    await _stage(out, sessions, "START", run_id)
    await _stage(out, sessions, "COMPLETE", run_id)
    rows = await _drain(out, sessions)

    run = str(run_id)
    assert receiver.keys() == [(run, "START")] * 3 + [(run, "COMPLETE")]
    assert "authorization" not in receiver.received[0].headers  # no key configured
    start, complete = rows
    assert (start.attempts, start.last_error) == (3, "503 Service Unavailable")
    assert start.delivered_at is not None and complete.attempts == 1
    assert complete.delivered_at >= start.delivered_at


async def test_a_retry_waits_its_backoff(sessions: Sessions, receiver: Receiver) -> None:
    receiver.answer = lambda _body: 503
    out = OpenLineageOut(_settings(receiver.url), sessions, backoff_base=3600, backoff_cap=7200)
    await _stage(out, sessions, "START", uuid4())
    assert await out.deliver_once() == 0
    assert await out.deliver_once() == 0  # not due again for half an hour at least
    assert len(receiver.received) == 1
    async with sessions() as session:
        wait = await session.scalar(sa.select(openlineage_outbox.c.next_attempt_at - sa.func.now()))
    assert wait is not None
    assert timedelta(minutes=29) < wait <= timedelta(hours=1)  # jittered: 0.5-1 x 1 h


async def test_unreachable_receiver_is_retried(sessions: Sessions) -> None:
    out = _fast(_settings(f"http://127.0.0.1:{free_port()}"), sessions)
    await _stage(out, sessions, "START", uuid4())
    assert await out.deliver_once() == 0
    (row,) = await _rows(sessions)
    assert row.attempts == 1 and row.delivered_at is None and row.failed_at is None
    assert row.last_error.startswith("ConnectError")


async def test_refused_event_is_not_retried_and_others_go_on(
    sessions: Sessions, receiver: Receiver
) -> None:
    refused, other = uuid4(), uuid4()
    receiver.answer = lambda body: (
        400 if body["run"]["runId"] == str(refused) and body["eventType"] == "START" else 200
    )
    out = _fast(_settings(receiver.url), sessions)
    await _stage(out, sessions, "START", refused)
    await _stage(out, sessions, "START", other)
    await _stage(out, sessions, "FAIL", refused)
    await _stage(out, sessions, "ABORT", other)
    rows = await _drain(out, sessions)
    assert await out.deliver_once() == 0  # nothing left, the refused one included

    by_key = {(str(r.run_id), r.event_type): r for r in rows}
    bad = by_key[(str(refused), "START")]
    assert bad.failed_at is not None and bad.delivered_at is None
    assert (bad.attempts, bad.last_error) == (1, "400 Bad Request")
    assert sorted(receiver.keys()) == sorted(by_key)  # each sent exactly once
    for key, row in by_key.items():
        if key != (str(refused), "START"):
            assert row.delivered_at is not None and row.failed_at is None


async def test_not_enabled_stages_nothing(sessions: Sessions) -> None:
    out = OpenLineageOut(_settings(None), sessions)
    assert not out.enabled
    await _stage(out, sessions, "START", uuid4())
    assert await _rows(sessions) == []
    assert await out.deliver_once() == 0
    await asyncio.wait_for(out.deliver_forever(asyncio.Event()), timeout=5)  # returns at once


async def test_two_replicas_never_send_an_event_twice(
    sessions: Sessions, receiver: Receiver
) -> None:
    receiver.delay = 0.02
    settings = _settings(receiver.url)
    replicas = [_fast(settings, sessions, batch_size=5) for _ in range(2)]
    runs = [uuid4() for _ in range(12)]
    for event_type in ("START", "COMPLETE"):
        for run_id in runs:
            await _stage(replicas[0], sessions, event_type, run_id)

    async def all_sent() -> bool:
        await asyncio.gather(*(r.deliver_once() for r in replicas))
        return len(receiver.received) >= 2 * len(runs)

    await eventually(all_sent, what="every event sent")
    assert sorted(Counter(receiver.keys()).values()) == [1] * (2 * len(runs))
    for run_id in runs:
        events = [t for r, t in receiver.keys() if r == str(run_id)]
        assert events == ["START", "COMPLETE"]
    rows = await _rows(sessions)
    assert all(r.delivered_at is not None and r.attempts == 1 for r in rows)


async def test_loop_delivers_until_stopped(sessions: Sessions, receiver: Receiver) -> None:
    out = _fast(_settings(receiver.url), sessions)
    stopping = asyncio.Event()
    loop = asyncio.create_task(out.deliver_forever(stopping))
    try:
        run_id = uuid4()
        await _stage(out, sessions, "START", run_id)
        await eventually(lambda: _true(len(receiver.received) == 1), what="START sent")
        await _stage(out, sessions, "COMPLETE", run_id)
        await eventually(lambda: _true(len(receiver.received) == 2), what="COMPLETE sent")
    finally:
        stopping.set()
        await asyncio.wait_for(loop, timeout=5)  # wakes at once on stop
    assert receiver.keys() == [(str(run_id), "START"), (str(run_id), "COMPLETE")]


async def test_retention_prunes_only_finished_events_past_the_horizon(
    sessions: Sessions, receiver: Receiver
) -> None:
    receiver.answer = lambda body: 400 if body["eventType"] == "FAIL" else 201
    settings = _settings(receiver.url, openlineage_retention_days=7)
    out = _fast(settings, sessions)
    old_done, old_refused, new_done = uuid4(), uuid4(), uuid4()
    await _stage(out, sessions, "START", old_done)
    await _stage(out, sessions, "FAIL", old_refused)
    await _stage(out, sessions, "START", new_done)
    await _drain(out, sessions)
    old_pending = uuid4()
    await _stage(out, sessions, "START", old_pending)
    async with sessions.begin() as session:
        await session.execute(
            sa.update(openlineage_outbox)
            .where(openlineage_outbox.c.run_id.in_([old_done, old_refused, old_pending]))
            .values(created_at=sa.func.now() - timedelta(days=8))
        )
    assert await prune_once(sessions, retention_rule(settings)) == 2
    assert {r.run_id for r in await _rows(sessions)} == {new_done, old_pending}


async def test_delivered_body_is_a_valid_openlineage_python_run_event(
    sessions: Sessions, receiver: Receiver
) -> None:
    ol = pytest.importorskip("openlineage.client.event_v2")
    serde = pytest.importorskip("openlineage.client.serde")
    out = _fast(_settings(receiver.url), sessions)
    await _stage(out, sessions, "COMPLETE", uuid4())
    await out.deliver_once()
    body = receiver.received[0].body

    # Its attrs classes validate the runId (a UUID), eventTime (ISO 8601 with a time) and
    # eventType (the spec's enum); serialized back, the event is our body.
    event = ol.RunEvent(
        eventType=ol.RunState(body["eventType"]),
        eventTime=body["eventTime"],
        run=ol.Run(runId=body["run"]["runId"]),
        job=ol.Job(namespace=body["job"]["namespace"], name=body["job"]["name"]),
        inputs=[ol.InputDataset(d["namespace"], d["name"]) for d in body["inputs"]],
        outputs=[ol.OutputDataset(d["namespace"], d["name"]) for d in body["outputs"]],
        producer=body["producer"],
    )
    assert _without_empty_facets(serde.Serde.to_dict(event)) == body


def _without_empty_facets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty_facets(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty_facets(v) for v in value]
    return value
