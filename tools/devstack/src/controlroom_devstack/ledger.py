"""What became of every submitted run, from four independent records: the scheduler's
decisions as the event stream stored them, the callbacks a receiver got, the lineage edges
the gateway's API lists, and the run as the gateway's API shows it.

* **lost**: a run without a terminal decision, or without its callback, or (when it
  completed) without its lineage edge, or that the API does not show with the decided status.
* **duplicated**: a run with more than one terminal decision (distinct event ids: the same
  event published twice is one decision), more than one delivery to one receiver path
  (distinct ``webhook-id``; retries of one delivery are allowed, unless their bodies
  differ), more than
  one lineage edge, or a run the system holds that no accepted submission asked for.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from controlroom_contracts import subjects
from controlroom_devstack.receiver import Received
from controlroom_devstack.stream_reader import Stored
from controlroom_devstack.submitter import Submission

TERMINAL = (subjects.RUN_COMPLETED, subjects.RUN_FAILED, subjects.RUN_CANCELLED)
TERMINAL_STATUS = {
    subjects.RUN_COMPLETED: "completed",
    subjects.RUN_FAILED: "failed",
    subjects.RUN_CANCELLED: "cancelled",
}


@dataclass
class Observed:
    """The four records, read at one moment (``view_terminal_at`` kept across readings)."""

    stored: list[Stored]
    received: list[tuple[Received, datetime]]
    """Each callback with the wall-clock time it arrived."""
    edges: dict[str, list[datetime]]
    """Run id -> when each of its live lineage edges was recorded."""
    views: dict[str, str]
    """Run id -> the status the API shows."""
    view_terminal_at: dict[str, datetime]
    """Run id -> the first reading at which the API showed it finished."""


@dataclass
class RunRecord:
    run_id: str
    tenant: str
    accepted_at: datetime
    terminal_ids: set[str] = field(default_factory=set)
    status: str | None = None
    terminal_at: datetime | None = None
    """When the stream stored its first terminal decision."""
    deliveries: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    """Receiver path (a callback's URL, an endpoint's) -> webhook-id -> digests of the bodies
    received under it."""
    callback_at: datetime | None = None
    edges: list[datetime] = field(default_factory=list)
    view: str | None = None
    view_at: datetime | None = None
    failure: str | None = None
    """A failed or cancelled run's reason, as decided."""

    def lost(self, *, callbacks: bool, lineage: bool) -> list[str]:
        why = []
        if not self.terminal_ids:
            why.append("no terminal decision")
        if callbacks and not self.deliveries:
            why.append("no callback")
        if lineage and self.status == "completed" and not self.edges:
            why.append("no lineage edge")
        if self.view != self.status:
            why.append(f"the API shows {self.view}")
        return why

    def duplicated(self) -> list[str]:
        why = []
        if len(self.terminal_ids) > 1:
            why.append(f"{len(self.terminal_ids)} terminal decisions")
        for path, ids in self.deliveries.items():
            if len(ids) > 1:
                why.append(f"{len(ids)} deliveries (webhook-ids) to {path}")
            if any(len(bodies) > 1 for bodies in ids.values()):
                why.append(f"one webhook-id with different bodies to {path}")
        if len(self.edges) > 1:
            why.append(f"{len(self.edges)} lineage edges")
        return why

    def effect_at(self, *, callbacks: bool, lineage: bool) -> datetime | None:
        """When the last of its effects was in place (None while one is missing)."""
        if self.lost(callbacks=callbacks, lineage=lineage):
            return None
        times = [self.terminal_at, self.view_at]
        if callbacks:
            times.append(self.callback_at)
        if lineage and self.status == "completed":
            times.append(min(self.edges))
        return max(t for t in times if t is not None)


@dataclass
class Verdict:
    records: dict[str, RunRecord]
    lost: dict[str, list[str]]
    duplicated: dict[str, list[str]]
    strangers: list[str]
    """Runs the stream holds for these tenants that no accepted submission asked for."""
    callbacks: bool = True
    lineage: bool = True
    behind: int = 0
    """Messages durable consumers had not handled when the verdict was taken."""
    caught_up_at: datetime | None = None
    """When every durable consumer had handled (and acknowledged) everything."""

    @property
    def runs(self) -> int:
        return len(self.records)

    @property
    def lost_count(self) -> int:
        return len(self.lost)

    @property
    def duplicated_count(self) -> int:
        return len(self.duplicated) + len(self.strangers)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for record in self.records.values():
            counts[record.status or "not terminal"] += 1
        return dict(counts)

    def seconds_to_recover(
        self, fault_end: datetime, *, decisions_only: bool = False
    ) -> float | None:
        """From ``fault_end`` until every run accepted by then had ended and every effect of
        its end was in place (0 if all were before); None if some never were."""
        ends = []
        for record in self.records.values():
            if record.accepted_at > fault_end:
                continue
            if decisions_only:
                end = record.terminal_at
            else:
                end = record.effect_at(callbacks=self.callbacks, lineage=self.lineage)
            if end is None:
                return None
            ends.append(end)
        return max([0.0, *((end - fault_end).total_seconds() for end in ends)])

    def failures(self) -> dict[str, int]:
        """How many runs failed (or were cancelled) for each reason."""
        counts: dict[str, int] = defaultdict(int)
        for record in self.records.values():
            if record.failure:
                counts[record.failure] += 1
        return dict(counts)

    def summary(self) -> str:
        parts = [f"{self.runs} runs", f"statuses {self.statuses()}"]
        if self.failures():
            parts.append(f"failures {self.failures()}")
        if self.lost:
            parts.append(f"lost {dict(list(self.lost.items())[:5])}")
        if self.duplicated:
            parts.append(f"duplicated {dict(list(self.duplicated.items())[:5])}")
        if self.strangers:
            parts.append(f"runs nobody submitted {self.strangers[:5]}")
        return "; ".join(parts)


def callback_run_id(received: Received) -> str | None:
    """The run a callback (``{run_id, ...}``) or endpoint event (``{data: {run_id}}``) is about."""
    try:
        body = received.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    run_id = body.get("run_id") or (body.get("data") or {}).get("run_id")
    return None if run_id is None else str(run_id)


def arrival_times(received: Iterable[Received]) -> list[tuple[Received, datetime]]:
    """Each callback with the wall-clock time it arrived (the receiver keeps monotonic time)."""
    now_wall, now_mono = datetime.now(UTC), time.monotonic()
    return [(r, now_wall - timedelta(seconds=now_mono - r.at)) for r in received]


def judge(
    submissions: Iterable[Submission],
    observed: Observed,
    *,
    callbacks: bool = True,
    lineage: bool = True,
) -> Verdict:
    """The verdict on ``submissions`` (the accepted ones) from the four records."""
    records: dict[str, RunRecord] = {}
    for s in submissions:
        if s.run_id is not None and s.accepted_at is not None:
            records[s.run_id] = RunRecord(s.run_id, s.tenant, s.accepted_at)
    tenants = {r.tenant for r in records.values()}
    strangers: set[str] = set()
    for message in observed.stored:
        run_id = message.run_id
        if message.subject == subjects.JOB_SUBMITTED:
            if message.data.get("tenant_id") in tenants and run_id not in records:
                strangers.add(str(run_id))
            continue
        if run_id not in records or message.subject not in TERMINAL:
            continue
        record = records[run_id]
        if message.event_id not in record.terminal_ids:
            record.terminal_ids.add(message.event_id)
        if record.status is None:  # a second decision is a duplicate, not the status
            record.status = TERMINAL_STATUS[message.subject]
            reason = message.data.get("failure_reason") or message.data.get("reason")
            error = str(message.data.get("error") or "")[:200]
            if reason:
                record.failure = f"{reason}: {error}" if error else str(reason)
        if record.terminal_at is None or message.stored_at < record.terminal_at:
            record.terminal_at = message.stored_at
    for delivery, at in observed.received:
        run_id = callback_run_id(delivery)
        if run_id in records:
            record = records[run_id]
            webhook_id = delivery.headers.get("webhook-id", "")
            digest = hashlib.sha256(delivery.body).hexdigest()
            to_path = record.deliveries.setdefault(delivery.path, {})
            to_path.setdefault(webhook_id, set()).add(digest)
            if record.callback_at is None or at < record.callback_at:
                record.callback_at = at
    for run_id, record in records.items():
        record.edges = observed.edges.get(run_id, [])
        record.view = observed.views.get(run_id)
        record.view_at = observed.view_terminal_at.get(run_id)
    lost = {
        run_id: why
        for run_id, r in records.items()
        if (why := r.lost(callbacks=callbacks, lineage=lineage))
    }
    duplicated = {run_id: why for run_id, r in records.items() if (why := r.duplicated())}
    return Verdict(records, lost, duplicated, sorted(strangers), callbacks, lineage)


async def _pages(client: httpx.AsyncClient, path: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def lineage_edges(base_url: str, tokens: Mapping[str, str]) -> dict[str, list[datetime]]:
    """Live run-produced edges per run id (when each was recorded), over every tenant.

    Every run of a scenario declares entities of its own, so its edge has that run alone as
    its reference: an edge counting more runs than that shows as more than one edge."""
    found: dict[str, list[datetime]] = defaultdict(list)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for token in tokens.values():
            for edge in await _pages(client, "/api/v1/lineage/edges", token):
                if edge["origin"] == "run" and edge["latest_run_id"]:
                    created = datetime.fromisoformat(edge["created_at"])
                    found[str(edge["latest_run_id"])] += [created] * edge["run_count"]
    return dict(found)


async def run_views(base_url: str, tokens: Mapping[str, str]) -> dict[str, str]:
    """Every run's status as the API lists it, over every tenant."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return {
            str(item["run_id"]): str(item["status"])
            for token in tokens.values()
            for item in await _pages(client, "/api/v1/runs", token)
        }
