"""A real local HTTP server that records callbacks (tests and bench)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controlroom_devstack.infra import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver:
    """Answers POST /<anything>; ``fail_first`` requests answer 500 before it starts saying 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self._fail_first = fail_first
        self._arrived = asyncio.Condition()
        self._by_run: dict[str, asyncio.Event] = {}
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _handle(self, request: Request) -> Response:
        received = Received(
            request.url.path, dict(request.headers), await request.body(), time.monotonic()
        )
        self.received.append(received)
        try:
            run_id = str(received.json().get("run_id"))
        except ValueError:
            run_id = ""
        self._by_run.setdefault(run_id, asyncio.Event()).set()
        async with self._arrived:
            self._arrived.notify_all()
        if len(self.received) <= self._fail_first:
            return Response("try again", status_code=500)
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task

    async def wait_for_run(self, run_id: str, timeout: float = 20.0) -> None:
        """Wait until a callback about ``run_id`` has arrived (cheap with many waiters)."""
        await asyncio.wait_for(self._by_run.setdefault(run_id, asyncio.Event()).wait(), timeout)

    def matching(self, where: Callable[[Received], bool]) -> list[Received]:
        return [r for r in self.received if where(r)]

    async def wait_for(self, where: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        async def _first() -> Received:
            async with self._arrived:
                while not (found := self.matching(where)):
                    await self._arrived.wait()
                return found[0]

        return await asyncio.wait_for(_first(), timeout)
