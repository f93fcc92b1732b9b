"""What every chaos scenario shares: the stack's settings, the job, waiting for the ledger to
settle, dead letters, and the report row."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import nats

from controlroom_contracts import subjects
from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.ledger import (
    TERMINAL,
    Observed,
    Verdict,
    arrival_times,
    judge,
    lineage_edges,
    run_views,
)
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.reliability_report import ReportRow
from controlroom_devstack.stream_reader import Stored, read_stream
from controlroom_devstack.submitter import Submitter
from controlroom_devstack.waiting import eventually

from .conftest import SECRET

WORKING = "sleep 1; echo ok"
"""A job that is still running when a fault strikes mid-stream (16 run at once)."""
FINISHED = frozenset({"completed", "failed", "cancelled"})
BASE_ENV = {
    # Trivial jobs as local processes (bubblewrap where installed): the faults are the
    # platform's, not a container engine's.
    "CONTROLROOM_JOB_BACKEND": "local",
    "CONTROLROOM_CALLBACK_ALLOWLIST": '["127.0.0.0/8"]',
    "CONTROLROOM_EXECUTOR_CAPACITY": "16",
}


@contextmanager
def chaos_stack(name: str, **env: str) -> Iterator[ChaosStack]:
    """A started stack of its own (``env`` over ``BASE_ENV``), stopped at the end."""
    stack = ChaosStack(jwt_secret=SECRET, extra_env={**BASE_ENV, **env}, name=name)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def job(
    receiver: CallbackReceiver, label: str, code: str = "echo ok", **extra: Any
) -> dict[str, Any]:
    """A diagram_export job (routed to executor-docker) with its own lineage edge and both
    callbacks."""
    entity = uuid.uuid4().hex[:12]
    body: dict[str, Any] = {
        "job_type": "diagram_export",
        "spec": {
            "text": f"chaos {label}",
            "inputs": {"source": f"raw.c{entity}", "target": f"gold.c{entity}"},
        },
        "code": {"files": [{"path": "main.sh", "content": code}]},
        "created_by": "chaos",
        "callbacks": {"on_complete": receiver.url("complete"), "on_fail": receiver.url("fail")},
        # Lost attempts are retried; without a long backoff the retry is soon.
        "retry": {"backoff_seconds": 1},
    }
    body.update(extra)
    return body


class Ledger:
    """Reads the four records of a scenario's runs, keeping when the API first showed each
    one finished (a reading, every second or so, is as precise as that time gets)."""

    def __init__(
        self,
        stack: ChaosStack,
        submitter: Submitter,
        receiver: CallbackReceiver,
        tokens: Mapping[str, str],
        *,
        callbacks: bool = True,
        lineage: bool = True,
    ) -> None:
        self.stack, self.submitter, self.receiver, self.tokens = stack, submitter, receiver, tokens
        self.callbacks, self.lineage = callbacks, lineage
        self._view_terminal_at: dict[str, datetime] = {}

    async def _views(self) -> dict[str, str]:
        now = datetime.now(UTC)
        views = await run_views(self.stack.url("gateway"), self.tokens)
        for run_id, status in views.items():
            if status in FINISHED:
                self._view_terminal_at.setdefault(run_id, now)
        return views

    @asynccontextmanager
    async def following(self, interval: float = 1.0) -> AsyncIterator[None]:
        """Read the API's view of the runs every ``interval`` seconds meanwhile, so the time
        each was first shown finished is known to about that."""

        async def follow() -> None:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await self._views()
                await asyncio.sleep(interval)

        task = asyncio.create_task(follow())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def verdict(self) -> Verdict:
        gateway = self.stack.url("gateway")
        views = await self._views()
        observed = Observed(
            stored=await read_stream(self.stack.nats_url, (*TERMINAL, subjects.JOB_SUBMITTED)),
            received=arrival_times(list(self.receiver.received)),
            edges=await lineage_edges(gateway, self.tokens) if self.lineage else {},
            views=views,
            view_terminal_at=dict(self._view_terminal_at),
        )
        return judge(
            self.submitter.submissions,
            observed,
            callbacks=self.callbacks,
            lineage=self.lineage,
        )

    async def settle(self, timeout: float) -> Verdict:
        """The verdict once nothing is lost, or at the deadline; then again once every
        consumer has handled everything, so a late second decision or callback counts too."""
        last: list[Verdict] = []

        async def complete() -> Verdict | None:
            found = await self.verdict()
            last.append(found)
            return None if found.lost else found

        try:
            await eventually(
                complete, timeout=timeout, interval=1.0, what="every run accounted for"
            )
        except AssertionError:
            return last[-1]

        # A consumer that never catches up is reported (``Verdict.behind``) with the rest.
        caught_up = None
        with contextlib.suppress(AssertionError):
            await drained(self.stack)
            caught_up = datetime.now(UTC)
        found = await self.verdict()
        found.behind = await backlog(self.stack)
        found.caught_up_at = caught_up
        return found


async def backlog(stack: ChaosStack) -> int:
    """Messages of the event and dispatch streams not yet handled by every durable consumer
    (waiting, or delivered and not acknowledged)."""
    client = await nats.connect(stack.nats_url)
    try:
        js = client.jetstream()
        total = 0
        for stream in (subjects.EVENTS_STREAM, subjects.DISPATCH_STREAM):
            for info in await js.consumers_info(stream):
                if info.config.durable_name:
                    total += (info.num_pending or 0) + (info.num_ack_pending or 0)
        return total
    finally:
        await client.close()


async def drained(stack: ChaosStack, timeout: float = 120) -> None:
    """Wait until every durable consumer has handled everything its streams hold."""

    async def empty() -> bool:
        return await backlog(stack) == 0

    await eventually(empty, timeout=timeout, interval=0.5, what="every consumer caught up")


async def dead_letters(stack: ChaosStack) -> list[Stored]:
    """Every record on the dead-letter stream (``data`` is a ``DeadLetter``)."""
    return await read_stream(
        stack.nats_url, (subjects.ALL_DEADLETTER,), stream=subjects.DEADLETTER_STREAM
    )


def assert_exactly_once(found: Verdict) -> None:
    """Nothing lost, nothing duplicated, no run nobody asked for, no consumer left behind."""
    assert not found.lost, found.summary()
    assert not found.duplicated and not found.strangers, found.summary()
    assert not found.behind, f"consumers {found.behind} messages behind; {found.summary()}"


def seconds(value: float | None) -> str:
    return "not recovered" if value is None else f"{value:.1f} s"


def recovery_notes(found: Verdict, fault_end: datetime) -> str:
    """Every decision's recovery, and when the consumers had acknowledged everything (what a
    killed consumer held unacknowledged comes back only after its ack wait)."""
    decided = seconds(found.seconds_to_recover(fault_end, decisions_only=True))
    if found.caught_up_at is None:
        return f"every decision in {decided}; consumers never caught up"
    caught_up = (found.caught_up_at - fault_end).total_seconds()
    return f"every decision in {decided}; consumers caught up in <= {caught_up:.0f} s"


def row(scenario: str, found: Verdict, recover: str, notes: str) -> ReportRow:
    """The scenario's line in docs/reliability.md; why runs did not complete, if any did not,
    is noted."""
    failures = found.failures()
    if failures:
        notes += f"; why runs did not complete: {failures}"
    if found.lost:
        notes += f"; lost e.g. {dict(list(found.lost.items())[:3])}"
    if found.behind:
        notes += f"; consumers still {found.behind} messages behind at the end"
    if found.duplicated or found.strangers:
        notes += f"; duplicated e.g. {dict(list(found.duplicated.items())[:3])}"
        notes += f" {found.strangers[:3]}" if found.strangers else ""
    return ReportRow(
        scenario=scenario,
        runs=found.runs,
        lost=found.lost_count,
        duplicated=found.duplicated_count,
        recover=recover,
        notes=notes,
    )
