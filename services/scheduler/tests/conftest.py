"""Fixtures of the scheduler's tests: submissions, settings, a stand-in executor's heartbeats,
and the scheduler's decisions read back from the event stream in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.base import Message, utc_now
from controlroom_contracts.events import AttemptCompleted, JobSubmitted
from controlroom_devstack.heartbeats import StandInExecutor
from controlroom_devstack.tap import EventTap, Seen
from controlroom_scheduler.settings import SchedulerSettings

DECISIONS = {
    subjects.RUN_QUEUED,
    subjects.RUN_DISPATCHED,
    subjects.RUN_STARTED,
    subjects.RUN_COMPLETED,
    subjects.RUN_FAILED,
    subjects.RUN_CANCELLED,
    subjects.RUN_RETRY_SCHEDULED,
}
ENDS_AN_ATTEMPT = {
    subjects.RUN_COMPLETED,
    subjects.RUN_FAILED,
    subjects.RUN_CANCELLED,
    subjects.RUN_RETRY_SCHEDULED,
}


@dataclass
class Rig:
    """What a scheduler test drives: publish into the stream, read the decisions back."""

    nats_url: str
    database_url: str
    tap: EventTap

    @staticmethod
    def submitted(job_type: str = "diagram_export", tenant: str = "t1", **job: Any) -> JobSubmitted:
        return JobSubmitted(
            tenant_id=tenant,
            run_id=uuid4(),
            job=JobRequest(
                job_type=job_type,
                spec=JobSpec(text="export", inputs={"source": "a.b", "target": "c.d"}),
                code=CodeBundle(files=[CodeFile(path="main.py", content="print(1)")]),
                created_by="test",
                **job,
            ),
        )

    def settings(self, **extra: Any) -> SchedulerSettings:
        values: dict[str, Any] = {
            "nats_url": self.nats_url,
            "database_url": self.database_url,
            "dispatch_interval_seconds": 0.2,
            "sweep_interval_seconds": 0.2,
        }
        return SchedulerSettings(**(values | extra))

    async def publish(self, message: Message, subject: str | None = None) -> None:
        await self.tap.publish(subject or message.subject, message.model_dump_json().encode())

    def decisions(self, run_id: UUID | None = None) -> list[Seen]:
        """The scheduler's decisions in the order the stream holds them, each once (a
        re-publish after a crash carries the same event id)."""
        rid = None if run_id is None else str(run_id)
        seen: set[str] = set()
        found = []
        for s in self.tap.seen:
            if s.subject in DECISIONS and (rid is None or s.data["run_id"] == rid):
                if s.data["event_id"] not in seen:
                    seen.add(s.data["event_id"])
                    found.append(s)
        return found

    async def complete_dispatched(self, done: set[str], kind: str = "docker") -> None:
        """Play the executor: every attempt dispatched so far (and not in ``done``) completes."""
        for seen in self.tap.matching(subjects.dispatch_subject(kind)):
            key = f"{seen.data['run_id']}/{seen.data['attempt']}"
            if key in done:
                continue
            done.add(key)
            report = AttemptCompleted(
                tenant_id=seen.data["tenant_id"],
                run_id=seen.data["run_id"],
                attempt=seen.data["attempt"],
                summary="ok",
                finished_at=utc_now(),
            )
            await self.publish(report)

    def most_active(self, tenant: str) -> int:
        """The most attempts the tenant ever had active, replayed from the scheduler's
        decisions in the order they were taken (not sampled). A decision's time is taken
        before its commit, and a dispatch's after the count it relied on, so a slot freed
        and then reused replays in that order even when two replicas' publishes cross."""
        active: set[tuple[str, int]] = set()
        most = 0
        ordered = sorted(
            (d for d in self.decisions() if d.data["tenant_id"] == tenant),
            key=lambda d: (d.data["occurred_at"], d.subject == subjects.RUN_DISPATCHED),
        )
        for seen in ordered:
            run_id = seen.data["run_id"]
            if seen.subject == subjects.RUN_DISPATCHED:
                active.add((run_id, seen.data["attempt"]))
                most = max(most, len(active))
            elif seen.subject in ENDS_AN_ATTEMPT:
                attempt = seen.data.get("failed_attempt", seen.data.get("attempt"))
                active.discard((run_id, attempt))
        return most

    async def decided(
        self,
        subject: str,
        run_id: UUID,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 20.0,
    ) -> Seen:
        rid = str(run_id)
        return await self.tap.wait_for(
            subject, lambda d: d["run_id"] == rid and (where is None or where(d)), timeout
        )


@pytest.fixture
def rig(nats_url: str, database_url: str, event_tap: EventTap) -> Rig:
    return Rig(nats_url, database_url, event_tap)


@pytest.fixture
async def executor(nats_url: str) -> AsyncIterator[StandInExecutor]:
    """A stand-in docker executor with room for 100 runs (heartbeats only; see its module)."""
    stand_in = StandInExecutor(nats_url)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()
