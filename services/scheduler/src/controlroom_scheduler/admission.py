"""Which queued runs may start now, and in what order: a pure function of the queue and caps.

Order, from the outside in:
  1. **Tenants** take turns (round robin): each tenant's best run, then each one's second, ...;
     in a round, the tenant whose run has waited longest goes first. A tenant at its cap is
     skipped, so it never delays another.
  2. **Lanes** within a tenant share its turns by weight (weighted fair queuing: the k-th run
     of a lane of weight w comes at virtual time k / w).
  3. **Priority** within a lane (1 before 5), **aged**: every ``aging_seconds`` a run waits
     counts as one step up, so a priority-5 run waits at most ``4 * aging_seconds`` before it
     competes as priority 1, and from then on nothing that arrived after it goes first.
  4. **First in, first out** among equals.
Caps: per tenant, per lane of a tenant (optional), and per executor kind (the free capacity
live executors advertise). A run whose executor kind is full is passed over; runs of other
kinds behind it still go.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from controlroom_contracts.api import QueueReason


@dataclass(frozen=True)
class Candidate:
    run_id: UUID
    tenant_id: str
    lane: str
    priority: int
    eligible_at: datetime
    """Since when it may run: its submission, or the end of its retry backoff."""
    executor_kind: str


@dataclass(frozen=True)
class Caps:
    tenant_default: int
    tenant_overrides: Mapping[str, int]
    lane_weights: Mapping[str, float]
    lane_caps: Mapping[str, int | None]
    aging_seconds: float

    def tenant(self, tenant_id: str) -> int:
        return self.tenant_overrides.get(tenant_id, self.tenant_default)

    def lane_weight(self, lane: str) -> float:
        return self.lane_weights.get(lane, 1.0)


@dataclass(frozen=True)
class Usage:
    """Attempts active now (dispatched or running), and each executor kind's free slots."""

    tenant_active: Mapping[str, int]
    lane_active: Mapping[tuple[str, str], int]
    kind_free: Mapping[str, int]
    live_kinds: frozenset[str]


def effective_priority(candidate: Candidate, now: datetime, aging_seconds: float) -> int:
    waited = max(0.0, (now - candidate.eligible_at).total_seconds())
    steps = math.floor(waited / aging_seconds) if aging_seconds > 0 else 0
    return max(1, candidate.priority - steps)


def _lane_key(c: Candidate, now: datetime, caps: Caps) -> tuple[int, datetime, UUID]:
    return (effective_priority(c, now, caps.aging_seconds), c.eligible_at, c.run_id)


def tenant_order(candidates: Iterable[Candidate], now: datetime, caps: Caps) -> list[Candidate]:
    """One tenant's runs in the order they would be dispatched if nothing were capped."""
    lanes: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        lanes[c.lane].append(c)
    merged: list[tuple[float, str, int, Candidate]] = []
    for lane, runs in lanes.items():
        runs.sort(key=lambda c: _lane_key(c, now, caps))
        weight = caps.lane_weight(lane)
        merged.extend(((k + 1) / weight, lane, k, c) for k, c in enumerate(runs))
    merged.sort(key=lambda item: item[:3])
    return [c for *_, c in merged]


def plan(
    candidates: Iterable[Candidate], usage: Usage, caps: Caps, now: datetime, limit: int
) -> list[Candidate]:
    """The runs to dispatch now, in dispatch order, at most ``limit``; no cap is exceeded."""
    by_tenant: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.eligible_at <= now:  # a retry still in its backoff waits
            by_tenant[c.tenant_id].append(c)
    tenant_used = dict(usage.tenant_active)
    lane_used = dict(usage.lane_active)
    kind_free = dict(usage.kind_free)
    queues: dict[str, Iterator[Candidate]] = {}
    heads: list[tuple[datetime, str]] = []
    for tenant, runs in by_tenant.items():
        if tenant_used.get(tenant, 0) >= caps.tenant(tenant):
            continue
        queues[tenant] = iter(tenant_order(runs, now, caps))
        heads.append((min(c.eligible_at for c in runs), tenant))
    turn_order = [tenant for _, tenant in sorted(heads)]
    admitted: list[Candidate] = []
    while turn_order and len(admitted) < limit:
        still_going: list[str] = []
        for tenant in turn_order:
            if len(admitted) >= limit:
                break
            picked = _next_admissible(queues[tenant], lane_used, kind_free, caps)
            if picked is None:
                continue  # nothing more of this tenant can go in this pass
            admitted.append(picked)
            tenant_used[tenant] = tenant_used.get(tenant, 0) + 1
            key = (tenant, picked.lane)
            lane_used[key] = lane_used.get(key, 0) + 1
            kind_free[picked.executor_kind] -= 1
            if tenant_used[tenant] < caps.tenant(tenant):
                still_going.append(tenant)
        turn_order = still_going
    return admitted


def _next_admissible(
    queue: Iterator[Candidate],
    lane_used: dict[tuple[str, str], int],
    kind_free: dict[str, int],
    caps: Caps,
) -> Candidate | None:
    """The tenant's next run whose lane and executor kind have room (passed-over runs wait for
    the next pass, where they are first again)."""
    for c in queue:
        lane_cap = caps.lane_caps.get(c.lane)
        if lane_cap is not None and lane_used.get((c.tenant_id, c.lane), 0) >= lane_cap:
            continue
        if kind_free.get(c.executor_kind, 0) <= 0:
            continue
        return c
    return None


@dataclass(frozen=True)
class Explanation:
    run_id: UUID
    reason: QueueReason | None
    position: int


def explain(
    tenant_id: str, queued: Iterable[Candidate], usage: Usage, caps: Caps, now: datetime
) -> list[Explanation]:
    """For each of a tenant's queued runs, why it waits and its place in line (1-based)."""
    order = tenant_order(queued, now, caps)
    tenant_full = usage.tenant_active.get(tenant_id, 0) >= caps.tenant(tenant_id)
    explained = []
    for position, c in enumerate(order, start=1):
        reason: QueueReason | None = None
        lane_cap = caps.lane_caps.get(c.lane)
        if c.eligible_at > now:
            reason = QueueReason.retry_backoff
        elif c.executor_kind not in usage.live_kinds:
            reason = QueueReason.no_executor
        elif tenant_full:
            reason = QueueReason.tenant_cap_reached
        elif lane_cap is not None and usage.lane_active.get((tenant_id, c.lane), 0) >= lane_cap:
            reason = QueueReason.lane_cap_reached
        elif usage.kind_free.get(c.executor_kind, 0) <= 0:
            reason = QueueReason.no_executor_capacity
        explained.append(Explanation(c.run_id, reason, position))
    return explained
