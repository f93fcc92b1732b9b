"""Schedules: ticks submit runs exactly once across replicas and restarts, missed ticks collapse
into one, paused schedules wait, cron is read in the schedule's time zone; against a real
nats-server and Postgres, with a stand-in for the gateway's template answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import nats
import pytest
import sqlalchemy as sa
from croniter import croniter
from nats.aio.client import Client
from nats.aio.msg import Msg

from controlroom_contracts import subjects
from controlroom_contracts.rpc import RpcError
from controlroom_contracts.schedules import (
    CreateSchedule,
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    ScheduleIn,
    SetSchedulePaused,
    TemplateJob,
    TemplateJobQuery,
)
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import Seen
from controlroom_devstack.waiting import eventually
from controlroom_runtime import db
from controlroom_scheduler.app import create_app
from controlroom_scheduler.clock import Clock
from controlroom_scheduler.ticker import scheduled_run_id

from .conftest import Rig

GONE = "retired-template"


class StandInTemplates:
    """A stand-in for the gateway's answer to ``TemplateJobQuery`` (the gateway owns templates):
    every template is the rig's job with the schedule's inputs merged over its own, except
    ``GONE``, which is not found. It runs nothing else of the gateway.

    With ``gather=n`` it holds its answers until n questions wait (or ``HOLD_SECONDS`` passed
    since the first): n scheduler replicas asking for one tick then go on to fire it together,
    which is the race that must still fire it once."""

    HOLD_SECONDS = 0.5

    def __init__(self, url: str, gather: int = 1) -> None:
        self._url = url
        self._client: Client | None = None
        self.gather = gather
        self._waiting: list[Msg] = []

    async def start(self) -> None:
        self._client = await nats.connect(self._url)
        await self._client.subscribe(subjects.TEMPLATE_JOB_QUERY, cb=self._answer)
        await self._client.flush()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _answer(self, msg: Msg) -> None:
        self._waiting.append(msg)
        if len(self._waiting) == 1 and self.gather > 1:
            asyncio.get_running_loop().call_later(
                self.HOLD_SECONDS, lambda: asyncio.ensure_future(self._release())
            )
        if len(self._waiting) >= self.gather:
            await self._release()

    async def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for msg in waiting:
            await self._respond(msg)

    async def _respond(self, msg: Msg) -> None:
        query = TemplateJobQuery.model_validate_json(msg.data)
        if query.name == GONE:
            reply = RpcError(error=f"template {query.name!r} not found", code="not_found")
            await msg.respond(reply.model_dump_json().encode())
            return
        job = Rig.submitted(tenant=query.tenant_id).job
        spec = job.spec.model_copy(update={"inputs": dict(job.spec.inputs) | query.inputs})
        answer = TemplateJob(
            name=query.name, version=query.version or 1, job=job.model_copy(update={"spec": spec})
        )
        await msg.respond(answer.model_dump_json().encode())


@pytest.fixture
async def templates(nats_url: str) -> AsyncIterator[StandInTemplates]:
    stand_in = StandInTemplates(nats_url)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


async def _create(rig: Rig, tenant: str = "t1", **body: Any) -> dict[str, Any]:
    request = CreateSchedule(
        tenant_id=tenant,
        schedule=ScheduleIn.model_validate({"template": "nightly"} | body),
        created_by="admin-1",
    )
    return await rig.tap.ask(request)


async def _get(rig: Rig, schedule_id: str, tenant: str = "t1") -> dict[str, Any]:
    return await rig.tap.ask(GetSchedule(tenant_id=tenant, schedule_id=UUID(schedule_id)))


def _submitted(rig: Rig, schedule_id: str) -> list[Seen]:
    return rig.tap.matching(subjects.JOB_SUBMITTED, lambda d: d.get("schedule_id") == schedule_id)


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def _sql(rig: Rig, statement: str) -> list[sa.Row[Any]]:
    """Run one statement on the test's database, beside (or without) a running scheduler."""
    engine = db.create_engine(rig.database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(sa.text(statement))
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def _every_submission_accepted(rig: Rig) -> None:
    """Once the outbox has drained and the intake holds exactly the runs the tap saw, every
    submission staged so far has been published and seen: counts taken then are final."""

    async def settled() -> bool:
        staged = (await _sql(rig, "SELECT count(*) AS n FROM scheduler.outbox"))[0].n
        runs = {r.run_id for r in await _sql(rig, "SELECT run_id::text FROM scheduler.runs")}
        seen = {s.data["run_id"] for s in rig.tap.matching(subjects.JOB_SUBMITTED)}
        return bool(staged == 0 and runs == seen)

    await eventually(settled, what="every staged submission published and accepted")


@pytest.mark.usefixtures("templates")
async def test_an_interval_schedule_submits_one_run_per_tick_with_its_schedule_and_tick(
    rig: Rig,
) -> None:
    async with running(create_app(rig.settings(schedule_tick_seconds=0.2))):
        created = await _create(rig, interval_seconds=1, inputs={"target": "gold.nightly"})
        sid = created["schedule_id"]
        assert created["next_fire_at"] is not None and created["last_fired_at"] is None
        assert created["created_by"] == "admin-1" and created["timezone"] == "UTC"

        async def three_ticks() -> list[Seen] | None:
            seen = _submitted(rig, sid)
            return seen if len(seen) >= 3 else None

        seen = await eventually(three_ticks, what="three ticks")
        ticks = [_at(s.data["scheduled_for"]) for s in seen]
        assert ticks[0] >= _at(created["next_fire_at"])
        for earlier, later in zip(ticks, ticks[1:], strict=False):
            gap = later - earlier
            # One second apart, unless a slow machine let a pass fall behind (then collapsed).
            assert gap >= timedelta(seconds=1) and gap % timedelta(seconds=1) == timedelta(0)
        for s, tick in zip(seen, ticks, strict=True):
            assert s.data["run_id"] == str(scheduled_run_id(UUID(sid), tick))
            assert s.data["submitted_by"] == f"schedule:{sid}"
            assert s.data["job"]["spec"]["inputs"] == {"source": "a.b", "target": "gold.nightly"}
        # The scheduler's own intake accepts the submission like any other.
        await rig.decided(subjects.RUN_QUEUED, UUID(seen[0].data["run_id"]))
        after = await _get(rig, sid)
        assert after["last_fired_at"] is not None and after["last_run_id"] is not None
        assert after["last_error"] is None
        assert _at(after["next_fire_at"]) > _at(after["last_fired_at"])


async def test_two_replicas_fire_each_tick_exactly_once(
    rig: Rig, templates: StandInTemplates
) -> None:
    templates.gather = 2
    # Passes far more often than ticks, so both replicas contend for every one of them.
    first = create_app(rig.settings(schedule_tick_seconds=0.02))
    second = create_app(rig.settings(schedule_tick_seconds=0.02))
    async with running(first), running(second):
        sid = (await _create(rig, interval_seconds=1))["schedule_id"]

        async def ticks() -> set[str] | None:
            fired = {s.data["scheduled_for"] for s in _submitted(rig, sid)}
            return fired if len(fired) >= 4 else None

        await eventually(ticks, what="four ticks")
        paused = await rig.tap.ask(
            SetSchedulePaused(tenant_id="t1", schedule_id=UUID(sid), paused=True, changed_by="a")
        )
        assert paused["paused"] is True and paused["next_fire_at"] is None
        await _every_submission_accepted(rig)
        seen = _submitted(rig, sid)
        per_tick = Counter(s.data["scheduled_for"] for s in seen)
        assert len(per_tick) >= 4 and set(per_tick.values()) == {1}, per_tick
        assert len({s.data["run_id"] for s in seen}) == len(seen)


@pytest.mark.usefixtures("templates")
async def test_ticks_missed_while_no_scheduler_ran_fire_once_not_once_each(rig: Rig) -> None:
    settings = rig.settings(schedule_tick_seconds=0.2)
    async with running(create_app(settings)):
        # Created paused, so that neither fires before the scheduler stops.
        # Hourly: the tick after the one that fires is far enough away that none follows it
        # while the test runs (a per-minute schedule could tick again at a minute boundary).
        interval = (await _create(rig, interval_seconds=3600, paused=True))["schedule_id"]
        cron = (await _create(rig, cron="0 * * * *", paused=True))["schedule_id"]
    # The scheduler is down for a day: 24 ticks of each schedule fall meanwhile.
    moved = await _sql(
        rig,
        "UPDATE scheduler.schedules SET paused = false, next_fire_at = next_fire_at - "
        "interval '1 day' RETURNING schedule_id::text AS id, next_fire_at",
    )
    before = {row.id: row.next_fire_at for row in moved}
    restarted_at = datetime.now(UTC)
    async with running(create_app(settings)):
        for sid in (interval, cron):

            async def fired(sid: str = sid) -> dict[str, Any] | None:
                view = await _get(rig, sid)
                due = _at(view["next_fire_at"]) <= datetime.now(UTC)
                return view if view["last_fired_at"] and not due else None

            view = await eventually(fired, what="the overdue tick")
            tick = _at(view["last_fired_at"])
            # The latest tick due, not the first one missed; and the next is a tick after now.
            assert tick > restarted_at - timedelta(hours=1)
            assert (tick - before[sid]) % timedelta(hours=1) == timedelta(0)
            assert _at(view["next_fire_at"]) == tick + timedelta(hours=1)
        await _every_submission_accepted(rig)
        for sid in (interval, cron):
            assert len(_submitted(rig, sid)) == 1, _submitted(rig, sid)


@pytest.mark.usefixtures("templates")
async def test_a_paused_schedule_does_not_fire_and_resumes_from_its_next_tick(rig: Rig) -> None:
    async with running(create_app(rig.settings(schedule_tick_seconds=0.1))):
        paused = await _create(rig, interval_seconds=1, paused=True)
        assert paused["paused"] is True and paused["next_fire_at"] is None
        marker = (await _create(rig, interval_seconds=1))["schedule_id"]

        async def two_ticks_of_the_marker() -> bool:
            return len(_submitted(rig, marker)) >= 2

        await eventually(two_ticks_of_the_marker, what="two ticks of the unpaused schedule")
        assert _submitted(rig, paused["schedule_id"]) == []

        resumed_at = datetime.now(UTC)
        resumed = await rig.tap.ask(
            SetSchedulePaused(
                tenant_id="t1",
                schedule_id=UUID(paused["schedule_id"]),
                paused=False,
                changed_by="a",
            )
        )
        assert resumed["paused"] is False
        # Its ticks fall from now on; those that fell while it was paused are not fired.
        assert _at(resumed["next_fire_at"]) > resumed_at
        first = await rig.tap.wait_for(
            subjects.JOB_SUBMITTED, lambda d: d.get("schedule_id") == paused["schedule_id"]
        )
        assert _at(first.data["scheduled_for"]) >= _at(resumed["next_fire_at"])


async def test_a_cron_schedule_ticks_as_croniter_reads_it_in_its_time_zone(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        created = await _create(rig, cron="0 9 * * *", timezone="America/New_York")
        zone = ZoneInfo("America/New_York")
        expected = croniter("0 9 * * *", _at(created["created_at"]).astimezone(zone)).get_next(
            datetime
        )
        next_fire_at = _at(created["next_fire_at"])
        assert next_fire_at == expected
        # 09:00 in New York: 13:00 or 14:00 UTC as daylight saving time has it.
        assert next_fire_at.astimezone(zone).hour == 9
        assert next_fire_at.astimezone(UTC).hour == (13 if next_fire_at.dst() else 14)

        # Expressions croniter refuses, or that never match a date, are refused; none stored.
        for bad in ("61 * * * *", "0 0 31 2 *"):
            refused = await _create(rig, cron=bad)
            assert refused["code"] == "invalid" and refused["error"].startswith("cron: ")
        listed = await rig.tap.ask(ListSchedules(tenant_id="t1"))
        assert [s["schedule_id"] for s in listed["items"]] == [created["schedule_id"]]


def test_a_clock_collapses_missed_ticks_into_the_latest_and_keeps_its_zone() -> None:
    paris = Clock("0 9 * * *", None, "Europe/Paris")
    now = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)  # summer time began on the 30th
    missed_since = datetime(2025, 3, 20, 8, 0, tzinfo=UTC)  # 09:00 in Paris, winter time
    assert paris.latest_due(missed_since, now) == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert paris.next_after(paris.latest_due(missed_since, now), now) == datetime(
        2025, 4, 1, 7, 0, tzinfo=UTC
    )
    every_ten = Clock(None, 10)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    at = start + timedelta(seconds=95)
    assert every_ten.latest_due(start, at) == start + timedelta(seconds=90)
    assert every_ten.next_after(start + timedelta(seconds=90), at) == start + timedelta(seconds=100)
    on_the_tick = Clock("*/5 * * * *", None)
    tick = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
    assert on_the_tick.latest_due(tick, tick) == tick


@pytest.mark.usefixtures("templates")
async def test_a_tick_whose_template_is_gone_is_skipped_recorded_and_the_schedule_moves_on(
    rig: Rig,
) -> None:
    async with running(create_app(rig.settings(schedule_tick_seconds=0.1))):
        created = await _create(rig, template=GONE, interval_seconds=1)
        sid = created["schedule_id"]

        async def skipped() -> dict[str, Any] | None:
            view = await _get(rig, sid)
            return view if view["last_error"] else None

        view = await eventually(skipped, what="the skipped tick recorded")
        assert "not found" in view["last_error"] and view["last_fired_at"] is None
        assert _at(view["next_fire_at"]) > _at(created["next_fire_at"])
        assert _submitted(rig, sid) == []


async def test_schedules_are_tenant_private_and_deleted_ones_are_gone(rig: Rig) -> None:
    async with running(create_app(rig.settings())):
        sid = UUID((await _create(rig, interval_seconds=3600))["schedule_id"])
        other = "t2"
        for request in (
            GetSchedule(tenant_id=other, schedule_id=sid),
            SetSchedulePaused(tenant_id=other, schedule_id=sid, paused=True, changed_by="x"),
            DeleteSchedule(tenant_id=other, schedule_id=sid, deleted_by="x"),
        ):
            assert (await rig.tap.ask(request))["code"] == "not_found"
        assert (await rig.tap.ask(ListSchedules(tenant_id=other)))["items"] == []
        assert (await _get(rig, str(sid)))["paused"] is False
        done = await rig.tap.ask(DeleteSchedule(tenant_id="t1", schedule_id=sid, deleted_by="a"))
        assert done == {"id": str(sid)}
        assert (await _get(rig, str(sid)))["code"] == "not_found"
