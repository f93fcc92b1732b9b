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
from controlroom_contracts.base import Message
from controlroom_contracts.events import JobSubmitted
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
        """The scheduler's decisions in the order the stream holds them."""
        rid = None if run_id is None else str(run_id)
        return [
            s
            for s in self.tap.seen
            if s.subject in DECISIONS and (rid is None or s.data["run_id"] == rid)
        ]

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
