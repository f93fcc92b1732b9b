"""MCP resources: a run (its view as JSON) and its logs (text), by URI."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from mcp.server.fastmcp import FastMCP

from controlroom_gateway.errors import RunNotFound
from controlroom_gateway.mcp import reading
from controlroom_gateway.mcp.caller import Caller, caller_of
from controlroom_gateway.runs import queries

RUN_URI = "controlroom://runs/{run_id}"
LOGS_URI = "controlroom://runs/{run_id}/logs"
LOG_RESOURCE_LINES = 1000


async def run_json(caller: Caller, run_id: str) -> str:
    view = await queries.get_run(caller.gateway, caller.principal, _run_id(run_id))
    return view.model_dump_json()


async def logs_text(caller: Caller, run_id: str) -> str:
    logs = await reading.run_logs(
        caller.gateway,
        caller.principal,
        _run_id(run_id),
        tail=LOG_RESOURCE_LINES,
        after=0,
        until=None,
    )
    return "".join(f"{line.line}\n" for line in logs.lines)


def _run_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise RunNotFound(f"run {value} not found") from None


def register(server: FastMCP[Any]) -> None:
    # The caller is read from the server's request context rather than from a Context
    # parameter: FastMCP validates a template function's arguments, and that validation
    # rebuilds a parametrised Context without its request.

    @server.resource(RUN_URI, name="run", mime_type="application/json")
    async def run(run_id: str) -> str:
        """The run's view (as get_run answers it), JSON."""
        return await run_json(caller_of(server.get_context()), run_id)

    @server.resource(LOGS_URI, name="run_logs", mime_type="text/plain")
    async def run_logs(run_id: str) -> str:
        """The run's last 1,000 log lines, one per line."""
        return await logs_text(caller_of(server.get_context()), run_id)
