"""``/mcp``: the MCP server over Streamable HTTP, behind the REST API's bearer authentication.

A request without a valid token is refused here, at the HTTP level, with the problem+json REST
answers (401, or 429 past the address's budget), before any MCP message is read. The server
runs stateless (a fresh transport per request, plain JSON answers): any replica can answer any
request, and nothing is kept between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

from controlroom_gateway.errors import GatewayError
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.mcp.auth import BearerAuth
from controlroom_gateway.mcp.caller import CALLER_KEY, Caller
from controlroom_gateway.mcp.server import build_server
from controlroom_runtime.problems import problem

PATH = "/mcp"
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
"""As REST answers a 503 (``api.problems``)."""


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
        await self._sessions.handle_request(scope, receive, send)


async def _problem(exc: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(exc.status, exc.title, exc.detail, instance=PATH, **exc.extensions)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    elif exc.status == 429:
        response.headers["Retry-After"] = str(exc.extensions.get("retry_after", 1))
    elif exc.status == 503:  # the token may be good; its issuer's keys could not be read
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    await response(scope, receive, send)
