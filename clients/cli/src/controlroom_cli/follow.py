"""Following a run's events to its end, across dropped connections, once each.

The run's SSE stream (``GET /runs/{id}/events/stream``) is read from the start or from an
event id (``Last-Event-ID``); when the connection drops, the stream is opened again after the
last event fully received, so no event is lost or repeated (an event cut off mid-way was never
dispatched, and comes again). When the API refuses a stream (429 at the tenant's stream cap, a
503), the history is polled instead (``GET /runs/{id}/events?cursor=<event id>``: the same
positions). Nothing here knows HTTP: the client passes the openers in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from controlroom_cli.errors import Unreachable
from controlroom_cli.sse import SseParser

TERMINAL_EVENTS = frozenset({"completed", "failed", "cancelled"})
"""History events that end a run (and its stream)."""
TERMINAL_STATUSES = TERMINAL_EVENTS
MOST_FAILURES = 8
"""Reconnections in a row that deliver nothing before the CLI gives up (about 30 s)."""
POLL_SECONDS = 1.0


class StreamDropped(Exception):
    """The connection broke, or went silent, before the run ended."""


class StreamRefused(Exception):
    """The API will not open a stream now (its answer, one line, is the message)."""


class DeadlinePassed(Exception):
    """The caller's deadline passed before the run ended."""


RunEvent = dict[str, Any]
"""A history event: ``{id, event_type, occurred_at, data}`` (the API's RunEventView)."""
StreamOpener = Callable[[str | None, float | None], AbstractContextManager[Iterable[str]]]
"""``(last_event_id, read_timeout) -> chunks of text``; raises StreamDropped or StreamRefused."""
PageFetcher = Callable[[str | None], tuple[list[RunEvent], str | None]]
"""``cursor -> (events after it, next cursor)``: one page of the run's history."""


def backoff(failures: int) -> float:
    return float(min(5.0, 0.25 * 2 ** (failures - 1)))


class Follower:
    """Events of one run, from ``after`` to its end; ``ended()`` asks the API whether the run
    has ended (for a stream that closes without a terminal event)."""

    def __init__(
        self,
        open_stream: StreamOpener,
        fetch_page: PageFetcher,
        ended: Callable[[], bool],
        *,
        after: str | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open, self._fetch, self._ended = open_stream, fetch_page, ended
        self.last_event_id = after
        self.deadline = deadline
        self.reconnects = 0
        self.polled = False
        """True once the API refused the stream and the history was polled instead."""
        self._clock, self._sleep = clock, sleep

    def events(self) -> Iterator[RunEvent]:
        try:
            yield from self._stream()
        except StreamRefused:
            self.polled = True
            yield from self._poll()

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        remaining = self.deadline - self._clock()
        if remaining <= 0:
            raise DeadlinePassed()
        return remaining

    def _wait(self, seconds: float) -> None:
        remaining = self._remaining()
        self._sleep(seconds if remaining is None else min(seconds, remaining))

    def _stream(self) -> Iterator[RunEvent]:
        failures = 0
        while True:
            parser = SseParser(self.last_event_id)
            try:
                # A read blocks at most until the deadline (the server pings every 15 s).
                with self._open(self.last_event_id, self._remaining()) as chunks:
                    for chunk in chunks:
                        # The stream is working (a ping counts): a proxy that cuts long
                        # connections now and then never adds up to a give-up.
                        failures = 0
                        for sse in parser.feed(chunk):
                            event = _decoded(sse.data, sse.event, sse.id)
                            self.last_event_id = sse.id or self.last_event_id
                            yield event
                            if event["event_type"] in TERMINAL_EVENTS:
                                return
                        self._remaining()
            except StreamDropped as exc:
                failures += 1
                if failures > MOST_FAILURES:
                    raise Unreachable(f"the run's event stream keeps dropping: {exc}") from None
                self.reconnects += 1
                self._wait(backoff(failures))
                continue
            # Closed without a terminal event: the run ended before (a resumed stream), or
            # the server is going away and another will take the stream over.
            if self._ended():
                # Events written after the stream's last one (the closing lines, the end
                # itself) are in the history: read them before returning.
                yield from self._drain()
                return
            failures += 1
            self.reconnects += 1
            self._wait(backoff(failures))

    def _drain(self) -> Iterator[RunEvent]:
        """The history after ``last_event_id``, every page, up to a terminal event."""
        while True:
            items, cursor = self._fetch(self.last_event_id)
            for event in items:
                self.last_event_id = str(event["id"])
                yield event
                if event["event_type"] in TERMINAL_EVENTS:
                    return
            if cursor is None or not items:
                return

    def _poll(self) -> Iterator[RunEvent]:
        while True:
            self._remaining()
            items, cursor = self._fetch(self.last_event_id)
            for event in items:
                self.last_event_id = str(event["id"])
                yield event
                if event["event_type"] in TERMINAL_EVENTS:
                    return
            if cursor is not None:
                continue  # more history waiting: no pause
            if not items and self._ended():
                return
            self._wait(POLL_SECONDS)


def _decoded(data: str, event_type: str, event_id: str | None) -> RunEvent:
    try:
        decoded = json.loads(data)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and "event_type" in decoded:
        return decoded
    return {"id": event_id, "event_type": event_type, "occurred_at": None, "data": decoded}


def log_lines(event: RunEvent) -> list[tuple[str, str]]:
    """``(stream, line)`` of each line a ``log`` event carries (none for other events)."""
    if event.get("event_type") != "log":
        return []
    data = event.get("data") or {}
    stream = str(data.get("stream") or "stdout")
    return [(stream, str(line)) for line in data.get("lines") or []]
