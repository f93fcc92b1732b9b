"""The FastMCP server: its tools and resources, which tools each role sees, and how a refusal
becomes an MCP tool error (``isError``) carrying the problem document REST would answer."""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, Tool
from pydantic import ValidationError

from controlroom_gateway.auth import Role
from controlroom_gateway.errors import (
    Forbidden,
    GatewayError,
    InvalidRequest,
    UpstreamUnavailable,
)
from controlroom_gateway.mcp.caller import caller_of
from controlroom_gateway.mcp.resources import register as register_resources
from controlroom_gateway.mcp.tools import WRITE_TOOLS
from controlroom_gateway.mcp.tools import register as register_tools
from controlroom_runtime.availability import is_unavailable

log = logging.getLogger(__name__)

INSTRUCTIONS = """Control Room runs jobs (a job type, a spec, code files) and records their
lineage. validate_job before submit_job; wait_for_run (bounded) then get_logs to follow a run;
list_artifacts and get_artifact for what it produced; lineage_graph for where data comes from."""


class ControlRoomMCP(FastMCP[Any]):
    """FastMCP whose tool list and tool calls answer to the caller's role."""

    async def list_tools(self) -> list[Tool]:
        listed = await super().list_tools()
        if caller_of(self.get_context()).principal.role >= Role.operator:
            return listed
        return [tool for tool in listed if tool.name not in WRITE_TOOLS]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            if name in WRITE_TOOLS:
                role = caller_of(self.get_context()).principal.role
                if role < Role.operator:
                    raise Forbidden(f"role {role.name} may not call {name}; operator required")
            return await super().call_tool(name, arguments)
        except GatewayError as exc:
            return tool_error(exc)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, GatewayError):
                return tool_error(cause)
            if isinstance(cause, ValidationError) and cause.title == f"{name}Arguments":
                return tool_error(invalid_arguments(cause))  # FastMCP's model of the arguments
            if cause is None or isinstance(cause, ValueError):
                raise  # an unknown tool, a value the SDK refused: its own message says it
            if is_unavailable(cause):  # Postgres or NATS out of reach: nothing was done
                return tool_error(
                    UpstreamUnavailable("a dependency of the API is unreachable; retry later")
                )
            log.error("tool failed", exc_info=cause, extra={"tool": name})
            return tool_error(GatewayError("the tool failed; the gateway logged why"))


def invalid_arguments(exc: ValidationError) -> InvalidRequest:
    """The 422 REST answers a request whose fields do not validate, each one named."""
    errors = [
        {
            "field": ".".join(str(part) for part in ("arguments", *e["loc"])),
            "message": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors(include_url=False)
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return InvalidRequest(detail, errors=errors)


def tool_error(exc: GatewayError) -> CallToolResult:
    """An ``isError`` result whose text is the RFC 9457 problem document REST answers with."""
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        **exc.extensions,
    }
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(document, default=str))],
        isError=True,
    )


def build_server() -> ControlRoomMCP:
    server = ControlRoomMCP(
        "Control Room",
        instructions=INSTRUCTIONS,
        stateless_http=True,
        json_response=True,
        # FastMCP would allow only localhost Host headers: the gateway is served under any
        # name, and a browser page on another site cannot present the caller's bearer token.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    register_tools(server)
    register_resources(server)
    return server
