"""``controlroom mcp``: the gateway's MCP server (``/mcp``) on stdio, for agents that start
their MCP servers as subprocesses.

A bridge, not a second server: every MCP request read on stdin is sent to the gateway's
Streamable HTTP endpoint with the configured token, and its answer is written back, so the
tools, their shapes, the viewer's narrower list and the tool errors are the gateway's own. The
``mcp`` SDK is imported here only when the command runs: the CLI's start-up does not pay for it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from controlroom_cli.config import resolve
from controlroom_cli.errors import ConfigProblem, Unreachable
from controlroom_cli.options import Profile

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.server.lowlevel import Server

MAX_WAIT_SECONDS = 300.0
"""The longest a tool waits upstream (``wait_for_run``): the HTTP read timeout is above it."""


def mcp(profile: Profile = None) -> None:
    """Serve the gateway's MCP tools on stdio (for Continue's `type: stdio` and other agents).

    Stdout carries only MCP messages; errors go to stderr.
    """
    settings = resolve(profile)
    if not settings.token:
        raise ConfigProblem("no token: set CONTROLROOM_TOKEN or a profile's token")
    import anyio

    try:
        anyio.run(bridge, settings.url, settings.token)
    except BaseException as exc:  # an ExceptionGroup from the SDK's task groups, too
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise Unreachable(f"MCP at {settings.url}/mcp: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost cause worth one line (the SDK wraps failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


async def bridge(url: str, token: str) -> None:
    """Forward stdio's MCP session to the gateway's ``/mcp`` until stdin closes."""
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.stdio import stdio_server

    http = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30.0, read=MAX_WAIT_SECONDS + 30.0),
        follow_redirects=True,
    )
    endpoint = f"{url.rstrip('/')}/mcp"
    async with (
        http,
        streamable_http_client(endpoint, http_client=http) as (read, write, _),
        ClientSession(read, write) as upstream,
    ):
        hello = await upstream.initialize()
        server = _forwarding_server(upstream, hello.serverInfo.name, hello.instructions)
        async with stdio_server() as (stdin, stdout):
            await server.run(stdin, stdout, server.create_initialization_options())


def _forwarding_server(
    upstream: ClientSession, name: str, instructions: str | None
) -> Server[Any, Any]:
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.server.lowlevel.helper_types import ReadResourceContents
    from pydantic import AnyUrl

    server: Server[Any, Any] = Server(name, instructions=instructions)

    @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
    async def list_tools() -> list[types.Tool]:
        return (await upstream.list_tools()).tools

    # The gateway validates the arguments (and says what is wrong in a tool error).
    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await upstream.call_tool(name, arguments)

    @server.list_resources()  # type: ignore[no-untyped-call, untyped-decorator]
    async def list_resources() -> list[types.Resource]:
        return (await upstream.list_resources()).resources

    @server.list_resource_templates()  # type: ignore[no-untyped-call, untyped-decorator]
    async def list_resource_templates() -> list[types.ResourceTemplate]:
        return (await upstream.list_resource_templates()).resourceTemplates

    @server.read_resource()  # type: ignore[no-untyped-call, untyped-decorator]
    async def read_resource(uri: AnyUrl) -> list[ReadResourceContents]:
        found = await upstream.read_resource(uri)
        return [
            ReadResourceContents(
                content=item.text
                if isinstance(item, types.TextResourceContents)
                else base64.b64decode(item.blob),
                mime_type=item.mimeType,
            )
            for item in found.contents
        ]

    return server
