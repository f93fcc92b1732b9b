"""docs/continue.md: every YAML block parses, registers the MCP server in the two documented
forms, and names only tools the server has (read tools allowed, write tools asked)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from controlroom_gateway.mcp.server import build_server
from controlroom_gateway.mcp.tools import READ_TOOLS, WRITE_TOOLS

DOC = Path(__file__).parents[3] / "docs" / "continue.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
TOOL_NAME = re.compile(r"`([a-z]+_[a-z_]+)`")


def _blocks() -> list[Any]:
    return [yaml.safe_load(text) for text in BLOCK.findall(DOC.read_text())]


def _server_tools() -> set[str]:
    return {tool.name for tool in build_server()._tool_manager.list_tools()}


def test_the_documented_tool_sets_are_the_servers() -> None:
    assert READ_TOOLS | WRITE_TOOLS == _server_tools()
    assert not READ_TOOLS & WRITE_TOOLS


def test_every_yaml_block_parses_and_registers_the_server_both_ways() -> None:
    blocks = _blocks()
    assert len(blocks) >= 5
    servers = [s for b in blocks if isinstance(b, dict) for s in b.get("mcpServers", [])]
    by_type = {server["type"]: server for server in servers}
    assert set(by_type) == {"streamable-http", "stdio"}
    http = by_type["streamable-http"]
    assert http["url"].endswith("/mcp")
    assert http["requestOptions"]["headers"]["Authorization"] == (
        "Bearer ${{ secrets.CONTROLROOM_TOKEN }}"
    )
    stdio = by_type["stdio"]
    assert (stdio["command"], stdio["args"]) == ("controlroom", ["mcp"])
    assert set(stdio["env"]) == {"CONTROLROOM_URL", "CONTROLROOM_TOKEN"}


def test_headless_permissions_allow_the_read_tools_and_ask_for_the_write_tools() -> None:
    (permissions,) = [b for b in _blocks() if isinstance(b, dict) and "allow" in b]
    assert set(permissions["allow"]) == READ_TOOLS
    assert set(permissions["ask"]) == WRITE_TOOLS


def test_every_tool_the_page_names_exists() -> None:
    text = DOC.read_text()
    named = set(TOOL_NAME.findall(text)) | set(re.findall(r"--allow ([a-z_]+)", text))
    tools = _server_tools()
    # Names in backticks that are not tools: arguments and fields the page explains.
    fields = {
        "idempotency_key",
        "timeout_seconds",
        "after_event_id",
        "until_event_id",
        "next_after_event_id",
        "created_by",
        "job_type",
        "session_id",
        "schedule_id",
        "download_url",
    }
    assert named - fields <= tools, named - fields - tools
    assert tools <= named  # and the page documents every one
    assert "controlroom submit --wait" in text
