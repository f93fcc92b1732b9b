"""Whether caps held, judged from the scheduler's own decisions on the event stream."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from controlroom_contracts import subjects
from controlroom_devstack.ledger import TERMINAL
from controlroom_devstack.stream_reader import Stored


def decided_at(message: Stored) -> datetime:
    """When the scheduler took the decision (its clock, inside the deciding transaction), which
    orders a slot's release before the dispatch that reused it even when their publishes
    crossed."""
    return datetime.fromisoformat(str(message.data["occurred_at"]))


def peak_in_use(decisions: Iterable[Stored], start: str) -> dict[str, int]:
    """Per tenant, the most runs held at once: from ``start`` (RunDispatched, RunStarted)
    until the attempt's end (a terminal decision or RunRetryScheduled)."""
    ends = {*TERMINAL, subjects.RUN_RETRY_SCHEDULED}
    steps: list[tuple[datetime, int, str]] = []
    for message in decisions:
        tenant = str(message.data.get("tenant_id"))
        if message.subject == start:
            steps.append((decided_at(message), 1, tenant))
        elif message.subject in ends:
            steps.append((decided_at(message), -1, tenant))
    held: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    # At the same instant, a release counts before an acquisition.
    for _at, step, tenant in sorted(steps, key=lambda s: (s[0], s[1])):
        held[tenant] += step
        peak[tenant] = max(peak[tenant], held[tenant])
    return dict(peak)
