"""A TCP proxy between the CLI and the gateway that can cut a live event stream mid-event."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    streaming: bool = False

    def abort(self) -> None:
        self.client.transport.abort()
        self.upstream.transport.abort()


@dataclass
class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the gateway. ``cut_next()``: the next piece of an event
    stream (SSE ``data:``) the gateway sends is forwarded only half-way, then both sides of
    that connection are dropped, as a flaky network would."""

    upstream_port: int
    port: int = 0
    cuts: int = 0
    stream_requests: list[bytes] = field(default_factory=list)
    """The head of each event-stream request, in order (its Last-Event-ID among them)."""
    _cut_wanted: bool = False
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task

    def cut_next(self) -> None:
        self._cut_wanted = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        connection = _Connection(writer, up_writer)
        for pump in (self._up(reader, connection), self._down(up_reader, connection)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _up(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        try:
            while data := await reader.read(65536):
                if b"/events/stream" in data:
                    connection.streaming = True
                    self.stream_requests.append(data)
                connection.upstream.write(data)
                await connection.upstream.drain()
        except OSError:
            pass
        finally:
            connection.upstream.close()

    async def _down(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        try:
            while data := await reader.read(65536):
                if self._cut_wanted and connection.streaming and b"data:" in data:
                    self._cut_wanted = False
                    self.cuts += 1
                    connection.client.write(data[: data.index(b"data:") + 12])
                    await connection.client.drain()
                    connection.abort()
                    return
                connection.client.write(data)
                await connection.client.drain()
        except OSError:
            pass
        finally:
            connection.client.close()
