"""The chaos suite's own judges, on made-up records (no stack): what counts as lost and as
duplicated, the time to recover, the report's round trip, the memory slope."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from controlroom_contracts import subjects
from controlroom_devstack.caps import peak_in_use
from controlroom_devstack.ledger import Observed, judge
from controlroom_devstack.memory import MemorySampler, slope
from controlroom_devstack.receiver import Received
from controlroom_devstack.reliability_report import ReportRow, merge, parse, render
from controlroom_devstack.stream_reader import Stored
from controlroom_devstack.submitter import Submission

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _stored(subject: str, run_id: str, event_id: str, at: float, **data: object) -> Stored:
    body = {"event_id": event_id, "run_id": run_id, "tenant_id": "t", **data}
    return Stored(subject, body, {}, 1, T0 + timedelta(seconds=at), json.dumps(body).encode())


def _callback(
    run_id: str, webhook_id: str, body: str = "done", path: str = "/complete"
) -> Received:
    payload = json.dumps({"run_id": run_id, "status": body}).encode()
    return Received(path, {"webhook-id": webhook_id}, payload, 0.0)


def _observed(stored: list[Stored], received: list[Received], **edges: int) -> Observed:
    at = T0 + timedelta(seconds=5)
    return Observed(
        stored=stored,
        received=[(r, at) for r in received],
        edges={run: [at] * n for run, n in edges.items()},
        views={run: "completed" for run in ("a", "b", "c")},
        view_terminal_at={run: at for run in ("a", "b", "c")},
    )


def _submitted(*run_ids: str) -> list[Submission]:
    return [Submission("t", {}, run_id=r, accepted_at=T0) for r in run_ids]


def test_one_decision_published_twice_and_a_retried_webhook_are_not_duplicates() -> None:
    stored = [
        _stored(subjects.JOB_SUBMITTED, "a", "s1", 0),
        _stored(subjects.RUN_COMPLETED, "a", "e1", 1),
        _stored(subjects.RUN_COMPLETED, "a", "e1", 2),  # the outbox published it again
    ]
    received = [_callback("a", "w1"), _callback("a", "w1")]  # a retried delivery
    found = judge(_submitted("a"), _observed(stored, received, a=1))
    assert not found.lost and not found.duplicated and not found.strangers
    assert found.statuses() == {"completed": 1}
    assert found.seconds_to_recover(T0) == 5.0
    assert found.seconds_to_recover(T0, decisions_only=True) == 1.0


def test_second_decisions_deliveries_and_edges_are_duplicates_and_missing_ones_lost() -> None:
    stored = [
        _stored(subjects.RUN_COMPLETED, "a", "e1", 1),
        _stored(subjects.RUN_FAILED, "a", "e2", 2, failure_reason="lost", error="x"),
        _stored(subjects.RUN_COMPLETED, "b", "e3", 1),
        _stored(subjects.RUN_COMPLETED, "c", "e4", 1),
        _stored(subjects.JOB_SUBMITTED, "z", "s9", 0),  # a run nobody submitted
    ]
    received = [
        _callback("a", "w1"),
        _callback("b", "w2"),
        _callback("b", "w3"),  # a second delivery of the same callback
        _callback("c", "w4", "done"),
        _callback("c", "w4", "changed"),  # one webhook-id, two bodies
    ]
    found = judge(_submitted("a", "b", "c", "d"), _observed(stored, received, a=1, b=1, c=2))
    assert set(found.duplicated) == {"a", "b", "c"}
    assert found.strangers == ["z"]
    assert found.lost == {"d": ["no terminal decision", "no callback"]}
    assert found.seconds_to_recover(T0) is None


def test_the_report_keeps_earlier_rows_and_details_with_their_date() -> None:
    earlier = [
        ReportRow("kill a | b", 30, 0, 0, "1.0 s", "notes with | a pipe", "2026-11-01"),
        ReportRow("soak", 10, 0, 0, "-", "old", "2026-11-01"),
    ]
    text = render(earlier, {"soak": "| x |\n|---|"}, generated="g", machine="m", command="c")
    rows, details = parse(text)
    assert rows == earlier and details == {"soak": "| x |\n|---|"}
    now = [ReportRow("soak", 20, 0, 0, "-", "new"), ReportRow("burst", 5, 0, 0, "-", "n")]
    merged = merge(rows, now, "2026-12-05")
    assert [(r.scenario, r.runs, r.last_ran) for r in merged] == [
        ("kill a | b", 30, "2026-11-01"),
        ("soak", 20, "2026-12-05"),
        ("burst", 5, "2026-12-05"),
    ]


def test_memory_growth_is_fitted_over_the_second_half() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2.0
    sampler = MemorySampler(dict)
    mib = 1 << 20
    # Warm-up in the first half, flat in the second.
    sampler.samples["svc"] = [(t * 30.0, (100 + min(t, 5)) * mib) for t in range(21)]
    (growth,) = sampler.growth()
    assert growth.first_minute == 101.0 and growth.peak == 105.0
    assert abs(growth.growth_second_half) < 1e-9


def test_a_slot_released_and_reused_at_once_is_not_counted_twice() -> None:
    def decision(subject: str, run_id: str, at: float) -> Stored:
        occurred = (T0 + timedelta(seconds=at)).isoformat()
        return _stored(subject, run_id, f"{subject}{run_id}", at, occurred_at=occurred)

    decisions = [
        decision(subjects.RUN_DISPATCHED, "a", 0),
        decision(subjects.RUN_DISPATCHED, "b", 1),
        # a's slot is released and given to c in the same instant; published the other way
        decision(subjects.RUN_DISPATCHED, "c", 2),
        decision(subjects.RUN_COMPLETED, "a", 2),
        decision(subjects.RUN_RETRY_SCHEDULED, "b", 3),
        decision(subjects.RUN_DISPATCHED, "b", 4),
    ]
    assert peak_in_use(decisions, subjects.RUN_DISPATCHED) == {"t": 2}
