"""``/mcp``: the MCP server over Streamable HTTP, behind the REST API's bearer authentication.

A request without a valid token is refused here, at the HTTP level, with the problem+json REST
answers (401, or 429 past the address's budget), before any MCP message is read. The server
runs stateless (a fresh transport per request, plain JSON answers): any replica can answer any
request, and nothing is kept between them.

A plain JSON answer gives the SDK no reason to read the request again once its body is in, so
it would not notice a client that hangs up: a ``wait_for_run`` would go on holding one of the
tenant's stream slots until its deadline. ``_cancelled_on_hang_up`` watches for that instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Message, Receive, Scope, Send

from controlroom_gateway.errors import GatewayError
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.mcp.auth import BearerAuth
from controlroom_gateway.mcp.caller import CALLER_KEY, Caller
from controlroom_gateway.mcp.server import build_server
from controlroom_runtime.problems import problem

PATH = "/mcp"
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
"""As REST answers a 503 (``api.problems``)."""

Handler = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


class McpEndpoint:
    """The ASGI app mounted at ``PATH``; ``serve`` runs its sessions' task group for the life
    of the service (``ServiceRuntime.background``)."""

    def __init__(self, auth: BearerAuth, gateway: Callable[[], Gateway]) -> None:
        self._auth = auth
        self._gateway = gateway
        server = build_server()
        server.streamable_http_app()  # makes the session manager (stateless, JSON answers)
        self._sessions: StreamableHTTPSessionManager = server.session_manager
        self._ready = asyncio.Event()

    async def serve(self, stopping: asyncio.Event) -> None:
        """Hold the session manager's task group open until the service stops."""
        async with self._sessions.run():
            self._ready.set()
            await stopping.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {key.decode("latin-1"): value for key, value in scope.get("headers", ())}
        authorization = headers.get("authorization")
        client = scope.get("client")
        try:
            principal = await self._auth.principal(
                authorization.decode("latin-1") if authorization else None,
                client[0] if client else None,
            )
        except GatewayError as exc:
            await _problem(exc, scope, receive, send)
            return
        # The tools read their caller from the request's scope: the MCP server handles the
        # message in a task of its own, where the request's context variables do not reach.
        scope[CALLER_KEY] = Caller(self._gateway(), principal)
        await self._ready.wait()
        await _cancelled_on_hang_up(self._sessions.handle_request, scope, receive, send)


async def _cancelled_on_hang_up(app: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` on the request, cancelled if the client disconnects before it has answered.

    Once the body is read, only the watcher reads ``receive`` (an ASGI server has nothing but
    the disconnect left to give); ``app`` is handed that disconnect should it ask. Cancelling
    the SDK's handler terminates its transport, which cancels the tool in flight: the tool's
    own clean-up (a stream slot's ``finally``) gives back what it holds.
    """
    body_read = asyncio.Event()
    hung_up = asyncio.Event()
    answered = False

    async def request_receive() -> Message:
        if body_read.is_set():
            await hung_up.wait()
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_read.set()
        return message

    async def request_send(message: Message) -> None:
        nonlocal answered
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered = True  # from here on a disconnect is the server's end of the request
        await send(message)

    async def watch() -> None:
        await body_read.wait()
        while (await receive())["type"] != "http.disconnect":
            pass
        hung_up.set()

    handling = asyncio.create_task(app(scope, request_receive, request_send))
    watching = asyncio.create_task(watch())
    try:
        await asyncio.wait((handling, watching), return_when=asyncio.FIRST_COMPLETED)
        if answered:
            await asyncio.wait((handling,))  # only its clean-up is left: let it finish
    finally:
        watching.cancel()
        handling.cancel()  # when still running: the client hung up, or the server is stopping
        await asyncio.wait((handling, watching))
    if not handling.cancelled():
        handling.result()  # the handler's own error, if it raised one


async def _problem(exc: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(exc.status, exc.title, exc.detail, instance=PATH, **exc.extensions)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    elif exc.status == 429:
        response.headers["Retry-After"] = str(exc.extensions.get("retry_after", 1))
    elif exc.status == 503:  # the token may be good; its issuer's keys could not be read
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    await response(scope, receive, send)
