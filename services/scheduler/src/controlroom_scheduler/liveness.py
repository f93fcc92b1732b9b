"""Executors as the scheduler hears them: the latest heartbeat of each, in memory.

Heartbeats are plain NATS messages every few seconds and every replica hears all of them, so
nothing is written per heartbeat; the scheduler writes only the transitions they lead to.
Times are this process's own receive times, so clock skew between hosts does not matter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import ValidationError

from controlroom_contracts.base import utc_now
from controlroom_contracts.executors import ExecutorHeartbeat

log = logging.getLogger(__name__)

FORGET_LISTED_AFTER = 100_000
"""Attempts remembered as listed before the long-finished ones are forgotten."""
LISTING_MARGIN = timedelta(seconds=5)
"""A heartbeat received this long after an attempt started must list it (the beat sent while
the start was being reported may not)."""


@dataclass(frozen=True)
class _Seen:
    beat: ExecutorHeartbeat
    received_at: datetime
    holds: frozenset[tuple[UUID, int]]


class ExecutorBoard:
    def __init__(self, silence: timedelta) -> None:
        self._silence = silence
        self._latest: dict[str, _Seen] = {}
        self._listed: dict[tuple[UUID, int], datetime] = {}
        """When each attempt was last listed by its executor."""
        self.started_at = utc_now()

    def record_raw(self, body: bytes) -> None:
        try:
            beat = ExecutorHeartbeat.model_validate_json(body)
        except ValidationError as exc:
            log.warning("malformed executor heartbeat ignored", extra={"error": str(exc)[:300]})
            return
        self.record(beat)

    def record(self, beat: ExecutorHeartbeat, at: datetime | None = None) -> None:
        received = at or utc_now()
        holds = frozenset((a.run_id, a.attempt) for a in beat.attempts)
        self._latest[beat.executor_id] = _Seen(beat, received, holds)
        for key in holds:
            self._listed[key] = received
        if len(self._listed) > FORGET_LISTED_AFTER:
            oldest = received - 10 * self._silence
            self._listed = {k: t for k, t in self._listed.items() if t > oldest}

    def _live(self, now: datetime) -> list[ExecutorHeartbeat]:
        return [
            s.beat
            for s in self._latest.values()
            if s.beat.ready and now - s.received_at <= self._silence
        ]

    def capacity(self, now: datetime) -> dict[str, int]:
        """Each executor kind's advertised capacity, over its live, ready replicas."""
        total: dict[str, int] = {}
        for beat in self._live(now):
            total[beat.kind] = total.get(beat.kind, 0) + beat.capacity
        return total

    def live_kinds(self, now: datetime) -> frozenset[str]:
        return frozenset(beat.kind for beat in self._live(now))

    def lost(
        self, executor_id: str, run_id: UUID, attempt: int, started_at: datetime, now: datetime
    ) -> str | None:
        """Why the attempt is lost, or None while its executor may still hold it."""
        seen = self._latest.get(executor_id)
        if seen is None:
            # Unheard of since this process started: give it one silence period to speak.
            if now - max(self.started_at, started_at) > self._silence:
                return f"executor {executor_id} has not been heard from"
            return None
        if now - seen.received_at > self._silence:
            silent = (now - seen.received_at).total_seconds()
            return f"executor {executor_id} silent for {silent:.0f} s"
        key = (run_id, attempt)
        if seen.received_at > started_at + LISTING_MARGIN and key not in seen.holds:
            # Not listed for a whole silence period: an executor stops listing an attempt once
            # its final report is committed, and that report may need the outbox relay (a few
            # seconds) to arrive; by then the attempt is over, not lost.
            since = self._listed.get(key, started_at)
            if now - since > self._silence:
                return f"executor {executor_id} no longer holds attempt {attempt}"
        return None
