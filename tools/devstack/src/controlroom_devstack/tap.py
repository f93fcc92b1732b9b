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


async def publish_finished_run(tap: EventTap, tenant: str, on_complete: str) -> str:
    """A run of ``tenant`` whose on_complete callback is ``on_complete``, submitted and
    completed straight on NATS (as the gateway and the scheduler would); its id."""
    from uuid import uuid4

    from controlroom_contracts.api import Callbacks, CodeBundle, CodeFile, JobRequest, JobSpec
    from controlroom_contracts.base import utc_now
    from controlroom_contracts.events import JobSubmitted, RunCompleted

    submitted = JobSubmitted(
        tenant_id=tenant,
        run_id=uuid4(),
        job=JobRequest(
            job_type="diagram_export",
            spec=JobSpec(text="x"),
            code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
            created_by="test",
            callbacks=Callbacks.model_validate({"on_complete": on_complete}),
        ),
    )
    done = RunCompleted(
        tenant_id=tenant, run_id=submitted.run_id, attempt=1, summary="ok", finished_at=utc_now()
    )
    await tap.publish(submitted.subject, submitted.model_dump_json().encode())
    await tap.publish(done.subject, done.model_dump_json().encode())
    return str(submitted.run_id)
