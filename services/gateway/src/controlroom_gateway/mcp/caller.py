"""Who calls a tool, and the gateway it acts through: put in the request's scope by
``endpoint``, read back by the tools from their MCP request context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.fastmcp import Context
from mcp.server.session import ServerSession

from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import Unauthorized
from controlroom_gateway.gateway import Gateway

CALLER_KEY = "controlroom.caller"

Ctx = Context[ServerSession, Any, Any]


@dataclass(frozen=True)
class Caller:
    gateway: Gateway
    principal: Principal


def caller_of(ctx: Ctx) -> Caller:
    """The authenticated caller of the request being handled (Unauthorized if there is none,
    which ``endpoint`` makes impossible: it refuses such requests before MCP sees them)."""
    request = ctx.request_context.request
    caller = getattr(request, "scope", {}).get(CALLER_KEY)
    if not isinstance(caller, Caller):
        raise Unauthorized("no authenticated caller")
    return caller
