"""The gateway served over real HTTP, and a client that follows one of its event streams.

httpx's in-memory ASGI transport hands a response over only once the app has finished it, so a
stream that is still open can only be watched through a real server. A client that hangs up
there is seen by the app as a disconnect, as it is in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from fastapi import FastAPI

from controlroom_devstack.infra import free_port
from controlroom_devstack.waiting import until


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (already started with ``running``) on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, what="the test server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class FollowedStream:
    """What one open event stream has delivered so far: ``(id, event type)`` in order."""

    response: httpx.Response
    events: list[tuple[int, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    """Each event's data, in the order of ``events``."""
    ended: bool = False

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def types(self) -> list[str]:
        return [event for _, event in self.events]


async def _collect(response: httpx.Response, stream: FollowedStream) -> None:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "id" in fields:  # a blank line ends one event
            stream.events.append((int(fields["id"]), fields.get("event", "")))
            stream.data.append(fields.get("data", ""))
        fields = {}
    stream.ended = True


@asynccontextmanager
async def following(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[FollowedStream]:
    """Open the stream at ``path`` and collect its events in the background until the block
    ends; leaving the block hangs up (the client disconnects) if the server has not closed it.
    """
    async with client.stream("GET", path, headers=headers, timeout=None) as response:
        stream = FollowedStream(response)
        if response.status_code != 200:
            await response.aread()
            yield stream
            return
        reader = asyncio.create_task(_collect(response, stream))
        try:
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
