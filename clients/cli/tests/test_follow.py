"""Following a run's events: resumed after a drop from the last whole event (no line lost or
repeated), polled when the stream is refused, bounded by a deadline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from controlroom_cli.errors import Unreachable
from controlroom_cli.follow import (
    MOST_FAILURES,
    DeadlinePassed,
    Follower,
    RunEvent,
    StreamDropped,
    StreamRefused,
    log_lines,
)


def history(lines: int) -> list[RunEvent]:
    """A run's history: started, one log event per line, completed."""
    events: list[RunEvent] = [{"id": 1, "event_type": "started", "occurred_at": None, "data": {}}]
    for n in range(lines):
        events.append(
            {
                "id": n + 2,
                "event_type": "log",
                "occurred_at": None,
                "data": {"attempt": 1, "stream": "stdout", "lines": [f"line {n}"]},
            }
        )
    events.append({"id": lines + 2, "event_type": "completed", "occurred_at": None, "data": {}})
    return events


def sse(event: RunEvent) -> str:
    return f"id: {event['id']}\r\nevent: {event['event_type']}\r\ndata: {json.dumps(event)}\r\n\r\n"


class FakeServer:
    """Serves the history after the Last-Event-ID it is given, in small chunks; drops the
    connection at given character offsets of the stream it serves (mid-event)."""

    def __init__(self, events: list[RunEvent], drops: list[int], chunk: int = 9) -> None:
        self.events, self.drops, self.chunk = events, list(drops), chunk
        self.opened_after: list[str | None] = []

    @contextmanager
    def open(
        self, last_event_id: str | None, _read_timeout: float | None
    ) -> Iterator[Iterable[str]]:
        self.opened_after.append(last_event_id)
        after = int(last_event_id or 0)
        text = "".join(sse(e) for e in self.events if int(e["id"]) > after)
        drop = self.drops.pop(0) if self.drops else None
        yield self._chunks(text, drop)

    def _chunks(self, text: str, drop: int | None) -> Iterator[str]:
        end = len(text) if drop is None else drop
        for start in range(0, end, self.chunk):
            yield text[start : min(start + self.chunk, end)]
        if drop is not None:
            raise StreamDropped("connection reset")


def printed(events: Iterable[RunEvent]) -> list[str]:
    return [line for event in events for _, line in log_lines(event)]


def no_page(_cursor: str | None) -> tuple[list[RunEvent], str | None]:
    raise AssertionError("the history is polled only when the stream is refused")


def pages(events: list[RunEvent], size: int = 2) -> Any:
    """The history after a cursor, ``size`` events a page."""

    def page(cursor: str | None) -> tuple[list[RunEvent], str | None]:
        after = [e for e in events if int(e["id"]) > int(cursor or 0)]
        return after[:size], (str(after[size - 1]["id"]) if len(after) > size else None)

    return page


def no_sleep(_seconds: float) -> None:
    """Backoffs take no time in these tests."""


def test_drops_mid_event_lose_and_repeat_nothing() -> None:
    events = history(20)
    server = FakeServer(events, drops=[150, 333, 20, 401])
    sleeps: list[float] = []
    follower = Follower(server.open, no_page, lambda: True, sleep=sleeps.append)
    assert printed(follower.events()) == [f"line {n}" for n in range(20)]
    assert follower.reconnects == 4 and len(server.opened_after) == 5
    # Each new connection asked for what came after the last event fully received.
    assert server.opened_after[0] is None
    assert all(after is not None for after in server.opened_after[1:])
    assert [int(a) for a in server.opened_after[1:] if a] == sorted(
        int(a) for a in server.opened_after[1:] if a
    )
    assert sleeps and all(s > 0 for s in sleeps)


def test_following_from_an_event_id_starts_after_it() -> None:
    server = FakeServer(history(5), drops=[])
    follower = Follower(server.open, no_page, lambda: True, after="4")
    assert printed(follower.events()) == ["line 3", "line 4"]
    assert server.opened_after == ["4"]


def test_a_stream_closed_without_an_end_is_reopened_until_the_run_has_ended() -> None:
    events = history(3)
    unfinished = events[:-1]
    answers = iter([False, True])
    server = FakeServer(unfinished, drops=[])
    follower = Follower(server.open, pages(unfinished), lambda: next(answers), sleep=no_sleep)
    assert printed(follower.events()) == ["line 0", "line 1", "line 2"]
    assert len(server.opened_after) == 2 and server.opened_after[1] == str(unfinished[-1]["id"])


def test_a_refused_stream_falls_back_to_polling_the_history() -> None:
    events = history(7)
    cursors: list[str | None] = []

    @contextmanager
    def refuse(_after: str | None, _timeout: float | None) -> Iterator[Iterable[str]]:
        raise StreamRefused("429 Too many requests")
        yield []  # pragma: no cover

    shown = 0

    def page(cursor: str | None) -> tuple[list[RunEvent], str | None]:
        nonlocal shown
        cursors.append(cursor)
        after = int(cursor or 0)
        # The run advances by three events between polls.
        shown = min(len(events), shown + 3)
        ready = [e for e in events[:shown] if int(e["id"]) > after]
        return ready[:2], (str(ready[1]["id"]) if len(ready) > 2 else None)

    follower = Follower(refuse, page, lambda: False, sleep=lambda _: None)
    assert printed(follower.events()) == [f"line {n}" for n in range(7)]
    assert follower.polled and cursors[0] is None


def test_the_deadline_ends_a_quiet_wait() -> None:
    now = [0.0]

    @contextmanager
    def quiet(_after: str | None, read_timeout: float | None) -> Iterator[Iterable[str]]:
        assert read_timeout is not None and read_timeout <= 5.0
        now[0] += read_timeout  # the read timed out at the deadline
        raise StreamDropped("read timeout")
        yield []  # pragma: no cover

    follower = Follower(
        quiet, no_page, lambda: False, deadline=5.0, clock=lambda: now[0], sleep=lambda _: None
    )
    with pytest.raises(DeadlinePassed):
        list(follower.events())


def test_a_stream_that_keeps_failing_gives_up_with_one_line() -> None:
    server = FakeServer(history(2), drops=[0] * (MOST_FAILURES + 1))
    follower = Follower(server.open, no_page, lambda: False, sleep=lambda _: None)
    with pytest.raises(Unreachable, match="keeps dropping: connection reset"):
        list(follower.events())


def test_log_lines_carry_their_stream() -> None:
    event: dict[str, Any] = {
        "event_type": "log",
        "data": {"stream": "stderr", "lines": ["a", "b"]},
    }
    assert log_lines(event) == [("stderr", "a"), ("stderr", "b")]
    assert log_lines({"event_type": "progress", "data": {}}) == []


def test_a_clean_close_after_the_run_ended_drains_the_history_first() -> None:
    events = history(6)
    server = FakeServer(events[:3], drops=[])  # the stream closes after line 1
    follower = Follower(server.open, pages(events), lambda: True, sleep=no_sleep)
    seen = list(follower.events())
    assert printed(seen) == [f"line {n}" for n in range(6)]
    assert seen[-1]["event_type"] == "completed" and len(server.opened_after) == 1


def test_a_proxy_that_cuts_every_stream_after_some_data_never_ends_the_follow() -> None:
    events = history(MOST_FAILURES * 3)
    # Each connection carries one event and a half, then is cut: more cuts than MOST_FAILURES.
    cut = len(sse(events[0])) + 20
    server = FakeServer(events, drops=[cut] * (MOST_FAILURES * 3), chunk=len(sse(events[0])))
    follower = Follower(server.open, no_page, lambda: False, sleep=no_sleep)
    assert printed(follower.events()) == [f"line {n}" for n in range(MOST_FAILURES * 3)]
    assert follower.reconnects > MOST_FAILURES
