"""``controlroom mcp``: the CLI's stdio bridge to the gateway's /mcp, spawned as a subprocess by
the real ``mcp`` client SDK (as Continue starts a `type: stdio` server), against a live gateway."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import TextResourceContents
from pydantic import AnyUrl

from controlroom_devstack.tap import EventTap
from controlroom_gateway.mcp.tools import READ_TOOLS, WRITE_TOOLS
from controlroom_gateway.settings import GatewaySettings

from .test_api import job
from .test_live_streams import complete
from .test_mcp import answer, live, problem

SCRIPT = Path(sys.executable).with_name("controlroom")


@asynccontextmanager
async def stdio_session(base_url: str, token: str, errors: Path) -> AsyncIterator[ClientSession]:
    """``controlroom mcp`` as a subprocess, configured as CI would configure it."""
    assert SCRIPT.exists(), f"{SCRIPT} is missing: make install puts the console script there"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
    env |= {"CONTROLROOM_URL": base_url, "CONTROLROOM_TOKEN": token}
    env["XDG_CONFIG_HOME"] = str(errors.parent)  # no profile file of the machine's
    server = StdioServerParameters(command=str(SCRIPT), args=["mcp"], env=env)
    with errors.open("w") as errlog:
        async with (
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def test_controlroom_mcp_serves_the_gateway_tools_on_stdio(
    settings: GatewaySettings, token: Callable[..., str], event_tap: EventTap, tmp_path: Path
) -> None:
    async with live(settings, token()) as (base_url, _api):
        async with stdio_session(base_url, token(), tmp_path / "operator.err") as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} == READ_TOOLS | WRITE_TOOLS
            run_id = answer(await mcp.call_tool("submit_job", {"job": job()}))["run_id"]
            assert answer(await mcp.call_tool("get_run", {"run_id": run_id}))["status"] == "queued"
            await complete(event_tap, run_id)
            final = answer(
                await mcp.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 60})
            )
            assert final["status"] == "completed"
            invalid = problem(await mcp.call_tool("submit_job", {"job": {"spec": {}}}))
            assert invalid["status"] == 422 and invalid["errors"]
            templates = (await mcp.list_resource_templates()).resourceTemplates
            assert {t.uriTemplate for t in templates} == {
                "controlroom://runs/{run_id}",
                "controlroom://runs/{run_id}/logs",
            }
            resource = await mcp.read_resource(AnyUrl(f"controlroom://runs/{run_id}"))
            (content,) = resource.contents
            assert isinstance(content, TextResourceContents) and '"completed"' in content.text

        async with stdio_session(base_url, token(tenant="globex"), tmp_path / "other.err") as mcp:
            assert problem(await mcp.call_tool("get_run", {"run_id": run_id}))["status"] == 404

        async with stdio_session(base_url, token(role="viewer"), tmp_path / "viewer.err") as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} == READ_TOOLS
            assert problem(await mcp.call_tool("cancel_run", {"run_id": run_id}))["status"] == 403


async def test_a_bad_token_ends_controlroom_mcp_with_one_line(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    async with live(settings, token()) as (base_url, _api):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
        env |= {"CONTROLROOM_URL": base_url, "CONTROLROOM_TOKEN": "not-a-jwt"}
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "mcp",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 5, err
    (line,) = err.decode().splitlines()
    assert line.startswith("error: MCP at ") and "401" in line, line
    assert out == b""
