"""Which executors have reported in: the latest heartbeat of each, kept in memory.

Heartbeats are plain NATS messages every few seconds, so every gateway replica hears all of
them and rebuilds this view within one interval of starting; nothing is persisted.
"""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from controlroom_contracts.executors import ExecutorHeartbeat, ExecutorView

log = logging.getLogger(__name__)

STALE_AFTER_SECONDS = 30.0
FORGET_AFTER_SECONDS = 300.0


class ExecutorRegistry:
    def __init__(self) -> None:
        self._latest: dict[str, tuple[ExecutorHeartbeat, float]] = {}

    def record_raw(self, body: bytes) -> ExecutorHeartbeat | None:
        try:
            beat = ExecutorHeartbeat.model_validate_json(body)
        except ValidationError as exc:
            log.warning("malformed executor heartbeat ignored", extra={"error": str(exc)[:300]})
            return None
        # Staleness uses our own receive time, so clock skew between hosts does not matter.
        self._latest[beat.executor_id] = (beat, time.monotonic())
        return beat

    def views(self) -> list[ExecutorView]:
        now = time.monotonic()
        for executor_id, (_, seen) in list(self._latest.items()):
            if now - seen > FORGET_AFTER_SECONDS:
                del self._latest[executor_id]
        return [
            ExecutorView(
                id=beat.executor_id,
                kind=beat.kind,
                capacity=beat.capacity,
                running=beat.running,
                ready=beat.ready,
                last_heartbeat=beat.occurred_at,
                stale=now - seen > STALE_AFTER_SECONDS,
            )
            for beat, seen in sorted(self._latest.values(), key=lambda item: item[0].executor_id)
        ]

    def live_kinds(self) -> set[str]:
        """Executor kinds with a ready replica heard from in the last 30 s."""
        return {v.kind for v in self.views() if v.ready and not v.stale}
