"""A job's output: lines stored capped, streamed as batched ``RunLog`` events, progress parsed.

Each stream is split into lines (a line longer than ``MAX_LINE_BYTES`` is cut into pieces, so
a job that never writes a newline cannot grow our memory). Every line is redacted, then:

* written to ``logs/<stream>.log`` until the stream's cap (10 MiB by default); what comes
  after is counted and a truncation marker closes the file;
* batched into ``RunLog`` events while under the cap (a flood of output is not a flood of
  events), a batch leaving every ``FLUSH_SECONDS`` or when it reaches its size;
* a line ``::progress <percent> <message>`` also becomes a ``RunProgress`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from uuid import NAMESPACE_URL, uuid5

from controlroom_contracts.base import Message
from controlroom_contracts.events import RunLog, RunProgress
from controlroom_executor.backend import AttemptKey, Stream
from controlroom_executor.redaction import Redactor

MAX_LINE_BYTES = 16 << 10
BATCH_LINES = 500
BATCH_BYTES = 128 << 10
"""Well under NATS's default 1 MiB max_payload, whatever the lines hold."""
FLUSH_SECONDS = 0.25
TAIL_BYTES = 8192
"""How much of the end of each stream is kept in memory for the report's summary/error."""

PROGRESS = re.compile(r"^::progress\s+(\d{1,3}(?:\.\d+)?)%?(?:\s+(.*))?$")

Publish = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass
class _StreamState:
    name: Stream
    file: IO[bytes]
    partial: bytearray = field(default_factory=bytearray)
    stored: int = 0
    dropped: int = 0
    batch: list[str] = field(default_factory=list)
    batch_bytes: int = 0
    batches: int = 0
    tail: bytearray = field(default_factory=bytearray)


class OutputCapture:
    """Everything one attempt writes to stdout and stderr."""

    def __init__(
        self,
        key: AttemptKey,
        tenant_id: str,
        logs_dir: Path,
        *,
        cap_bytes: int,
        redactor: Redactor,
        publish: Publish,
    ) -> None:
        self._key = key
        self._tenant = tenant_id
        self._cap = cap_bytes
        self._redactor = redactor
        self._publish = publish
        logs_dir.mkdir(parents=True, exist_ok=True)
        self._streams: dict[Stream, _StreamState] = {
            name: _StreamState(name, (logs_dir / f"{name}.log").open("wb"))
            for name in ("stdout", "stderr")
        }
        self._events: list[Message] = []
        self._wake = asyncio.Event()
        self._closed = False

    # -- feeding (synchronous: called for every chunk the backend yields) -------------------
    def feed(self, stream: Stream, chunk: bytes) -> None:
        state = self._streams[stream]
        state.partial += chunk
        while True:
            newline = state.partial.find(b"\n")
            if newline < 0:
                if len(state.partial) < MAX_LINE_BYTES:
                    return
                newline = MAX_LINE_BYTES  # a line that never ends is cut into pieces
                line, state.partial = bytes(state.partial[:newline]), state.partial[newline:]
            else:
                line = bytes(state.partial[:newline])
                del state.partial[: newline + 1]
            self._line(state, line)

    def _line(self, state: _StreamState, raw: bytes) -> None:
        text = self._redactor.text(raw.decode("utf-8", errors="replace").rstrip("\r"))
        encoded = text.encode() + b"\n"
        state.tail += encoded
        if len(state.tail) > 2 * TAIL_BYTES:
            del state.tail[: len(state.tail) - TAIL_BYTES]
        if progress := PROGRESS.match(text):
            self._events.append(
                RunProgress(
                    tenant_id=self._tenant,
                    run_id=self._key.run_id,
                    attempt=self._key.attempt,
                    percent=min(float(progress.group(1)), 100.0),
                    message=(progress.group(2) or None) and progress.group(2)[:1000],
                )
            )
            self._wake.set()
        if state.stored + len(encoded) > self._cap:
            state.dropped += len(encoded)
            return
        state.file.write(encoded)
        state.stored += len(encoded)
        state.batch.append(text)
        state.batch_bytes += len(encoded)
        if len(state.batch) >= BATCH_LINES or state.batch_bytes >= BATCH_BYTES:
            self._seal(state)

    def _seal(self, state: _StreamState) -> None:
        if not state.batch:
            return
        key = self._key
        self._events.append(
            RunLog(
                # Numbered per stream: the same batch published twice is dropped by JetStream.
                event_id=uuid5(
                    NAMESPACE_URL, f"runlog/{key.run_id}/{key.attempt}/{state.name}/{state.batches}"
                ),
                tenant_id=self._tenant,
                run_id=key.run_id,
                attempt=key.attempt,
                stream=state.name,
                lines=state.batch,
            )
        )
        state.batches += 1
        state.batch = []
        state.batch_bytes = 0
        self._wake.set()

    # -- shipping ---------------------------------------------------------------------------
    async def ship(self) -> None:
        """Publish batches as they fill or every FLUSH_SECONDS, until :meth:`close`."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_SECONDS)
            self._wake.clear()
            for state in self._streams.values():
                self._seal(state)
            await self._send()

    async def _send(self) -> None:
        if self._events:
            events, self._events = self._events, []
            # Streaming is best effort: the stored log is the record, so a failed publish
            # loses live lines, never the log.
            with contextlib.suppress(Exception):
                await self._publish(events)

    async def close(self) -> None:
        """Flush partial lines, write the truncation markers, publish what is left."""
        self._closed = True
        for state in self._streams.values():
            if state.partial:
                self._line(state, bytes(state.partial))
                state.partial.clear()
            self._seal(state)
            if state.dropped:
                state.file.write(
                    f"[... output truncated: the log keeps the first {self._cap} bytes; "
                    f"{state.dropped} more bytes were not kept]\n".encode()
                )
            state.file.close()
        self._wake.set()
        await self._send()

    def tail(self, stream: Stream) -> str:
        return bytes(self._streams[stream].tail[-TAIL_BYTES:]).decode(errors="replace")

    def truncated(self, stream: Stream) -> int:
        return self._streams[stream].dropped
