"""The SSE parser: events however the bytes are split, and never half an event."""

from __future__ import annotations

import pytest

from controlroom_cli.sse import SseEvent, SseParser

STREAM = (
    ": ping\r\n"
    'id: 7\r\nevent: log\r\ndata: {"a": 1}\r\n\r\n'
    "retry: 100\n"
    "id: 8\nevent: progress\ndata: first\ndata:second\n\n"
    "event: ignored-without-data\n\n"
    "id: 9\rdata: three\r\r: ping\n"
)
EXPECTED = [
    SseEvent("log", '{"a": 1}', "7"),
    SseEvent("progress", "first\nsecond", "8"),
    SseEvent("message", "three", "9"),
]


def test_a_whole_stream_parses_into_its_events() -> None:
    assert SseParser().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_events_are_the_same_however_the_text_is_chunked(size: int) -> None:
    parser = SseParser()
    events = []
    for start in range(0, len(STREAM), size):
        events += parser.feed(STREAM[start : start + size])
    assert events == EXPECTED
    assert parser.last_event_id == "9"


def test_an_event_cut_off_before_its_blank_line_is_not_dispatched() -> None:
    parser = SseParser("3")
    assert parser.feed('id: 4\nevent: log\ndata: {"x"') == []
    assert parser.feed(": 1}\n") == []  # a complete line, but no blank line yet
    # The parser had read the id line already; a new connection starts from the caller's id.
    fresh = SseParser("3")
    assert fresh.last_event_id == "3"


def test_a_carriage_return_at_the_end_of_a_chunk_waits_for_its_line_feed() -> None:
    parser = SseParser()
    assert parser.feed("data: x\r") == []
    assert parser.feed("\n\r") == []
    assert parser.feed("\n") == [SseEvent("message", "x", None)]
