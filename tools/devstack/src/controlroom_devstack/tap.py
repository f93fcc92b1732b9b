"""Test helper: watch every Control Room subject and wait for a message, with a deadline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from controlroom_runtime.subscriptions import settle


@dataclass(frozen=True)
class Seen:
    subject: str
    data: dict[str, Any]
    headers: dict[str, str]


class EventTap:
    """A core NATS subscription on ``controlroom.>`` recording what it sees."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Client | None = None
        self.seen: list[Seen] = []
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        self._client = await nats.connect(self._url)
        await self._client.subscribe("controlroom.>", cb=self._on_message)
        # Live on the server before start returns, so nothing published after is missed.
        await settle(self._client)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    async def _on_message(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
        except ValueError:
            data = {"_raw": msg.data.decode(errors="replace")}
        self.seen.append(Seen(msg.subject, data, dict(msg.headers or {})))
        async with self._changed:
            self._changed.notify_all()

    def matching(
        self, subject: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[Seen]:
        return [s for s in self.seen if s.subject == subject and (where is None or where(s.data))]

    async def wait_for(
        self,
        subject: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 20.0,
    ) -> Seen:
        async def _first() -> Seen:
            async with self._changed:
                while True:
                    found = self.matching(subject, where)
                    if found:
                        return found[0]
                    await self._changed.wait()

        return await asyncio.wait_for(_first(), timeout)

    async def ask(self, request: BaseModel, timeout: float = 5.0) -> dict[str, Any]:
        """Send a request model on its own subject; the reply as JSON (an answer or an error)."""
        subject: str = getattr(request, "subject")  # noqa: B009 - ClassVar on request models
        reply = await self.client.request(
            subject, request.model_dump_json().encode(), timeout=timeout
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Publish through JetStream and wait for the stream to store it."""
        await self.client.jetstream().publish(subject, payload, headers=headers)
