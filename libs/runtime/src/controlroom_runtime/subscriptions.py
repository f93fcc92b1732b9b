"""Making sure what a connection subscribed to is live on the NATS server."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.errors import FlushTimeoutError


async def settle(connection: Client, timeout: float = 10.0) -> None:
    """Return once the server has processed every command sent on ``connection`` so far, so
    the subscriptions made before the call are live: a message published by anyone after it
    reaches them."""
    # ``Client.flush()`` alone does not promise this. nats-py writes its PING straight to the
    # socket, ahead of the commands still queued for its flusher task (the SUBs just made), so
    # the PONG can come back before the server has read them, and a request sent then on
    # another connection finds no one subscribed. Each flush also wakes the flusher; once it
    # has written everything queued, one more PING follows every earlier command on the wire,
    # and its PONG proves the server has processed them.
    deadline = asyncio.get_running_loop().time() + timeout
    await connection.flush()
    while connection.pending_data_size > 0:
        if asyncio.get_running_loop().time() > deadline:
            raise FlushTimeoutError
        await connection.flush()
    await connection.flush()
