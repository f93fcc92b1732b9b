"""A container's stdout and stderr as ``(stream, bytes)`` chunks, never held whole in memory.

Two sources: the attach stream opened before the container starts (live, nothing missed, and
back-pressured: a slow reader slows the job's writes rather than growing a buffer), and the
engine's log, replayed from the beginning then followed (for an adopted attempt, whose attach
was lost with the executor that started it; the engine caps that log, so a long one replays only
its tail).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import aiodocker
import aiohttp
from aiodocker.stream import Stream as AttachStream

from controlroom_executor.backend import Stream

_STREAMS: dict[int, Stream] = {1: "stdout", 2: "stderr"}
_HEADER = struct.Struct(">BxxxL")
"""Docker's multiplexing frame: stream id, three zero bytes, big-endian payload length."""
CHUNK = 64 << 10


async def attached_output(attach: AttachStream) -> AsyncIterator[tuple[Stream, bytes]]:
    """Everything the attach stream carries, until the container exits (the engine closes it)."""
    while (message := await attach.read_out()) is not None:
        stream = _STREAMS.get(message.stream)
        if stream is not None and message.data:
            yield stream, message.data


async def logged_output(
    docker: aiodocker.Docker, container_id: str
) -> AsyncIterator[tuple[Stream, bytes]]:
    """The engine's log of the container from its first line, following it until it exits."""
    # aiodocker's own log reader decodes to text and merges nothing back into bytes; the raw
    # multiplexed body is read here instead, through the client's request helper.
    async with docker._query(
        f"containers/{container_id}/logs",
        params={"follow": True, "stdout": True, "stderr": True},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=30),
    ) as response:
        body = response.content
        while True:
            try:
                header = await body.readexactly(_HEADER.size)
            except asyncio.IncompleteReadError:
                return
            stream_id, length = _HEADER.unpack(header)
            stream = _STREAMS.get(stream_id)
            while length:
                try:
                    piece = await body.readexactly(min(length, CHUNK))
                except asyncio.IncompleteReadError as partial:
                    if stream is not None and partial.partial:
                        yield stream, partial.partial
                    return
                length -= len(piece)
                if stream is not None:
                    yield stream, piece
