"""Server-Sent Events, parsed as the WHATWG HTML standard says (section 9.2.6): fields
``event``, ``data`` (joined by newlines), ``id``; comments (``: ping``) and ``retry`` skipped;
an event is dispatched by a blank line, so one cut off mid-way is never dispatched.

Text arrives in arbitrary chunks: a line, or a CR LF pair, may be split between two."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None


class SseParser:
    """Feed text as it arrives; complete events come out."""

    def __init__(self, last_event_id: str | None = None) -> None:
        self._pending = ""
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = last_event_id
        """The id of the last event dispatched (or set by a bare ``id:``), to resume after."""

    def feed(self, text: str) -> list[SseEvent]:
        self._pending += text
        events: list[SseEvent] = []
        while True:
            cr, lf = self._pending.find("\r"), self._pending.find("\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                return events
            end = min(ends)
            if end == cr and end == len(self._pending) - 1:
                return events  # a CR last: wait to see whether an LF follows it
            line = self._pending[:end]
            skip = 2 if self._pending.startswith("\r\n", end) else 1
            self._pending = self._pending[end + skip :]
            if (event := self._line(line)) is not None:
                events.append(event)

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive ping
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        return None  # `retry` and unknown fields are ignored

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(event=event or "message", data="\n".join(data), id=self.last_event_id)
