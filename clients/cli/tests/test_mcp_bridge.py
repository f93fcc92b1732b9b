"""``controlroom mcp`` against a gateway that refuses some requests mid-session: the session
survives each refusal (a 429 is retried after Retry-After; a 401 on a tool call is a tool
error; a 503 on another request is a JSON-RPC error), driven over stdio by the real mcp client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, McpError
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import TextContent

TOOL = {"name": "get_run", "inputSchema": {"type": "object"}}


class Gateway(BaseHTTPRequestHandler):
    """A stand-in for the gateway's stateless /mcp, refusing as ``REFUSALS`` says."""

    seen: list[tuple[str, dict[str, str]]] = []
    tools_list_calls = 0

    def log_message(self, *_: Any) -> None:
        """Quiet: the test reads what it needs from ``seen``."""

    def _send(self, status: int, body: Any = None, **headers: str) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        method = message.get("method", "")
        Gateway.seen.append((method, {k.lower(): v for k, v in self.headers.items()}))
        if self.headers["Authorization"] == "Bearer refused":
            refused = {"title": "Unauthorized", "status": 401, "detail": "the token is refused"}
            return self._send(401, refused)
        if "id" not in message:
            return self._send(202)
        ok = {"jsonrpc": "2.0", "id": message["id"]}
        if method == "initialize":
            version = message["params"]["protocolVersion"]
            info = {"name": "stub", "version": "0"}
            result = {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": info}
            return self._send(200, ok | {"result": result})
        if method == "tools/list":
            Gateway.tools_list_calls += 1
            if Gateway.tools_list_calls == 1:
                return self._send(429, {"title": "Too Many Requests"}, Retry_After="0")
            return self._send(200, ok | {"result": {"tools": [TOOL]}})
        if method == "tools/call":
            expired = {"title": "Unauthorized", "status": 401, "detail": "the token expired"}
            return self._send(401, expired)
        if method == "resources/list":
            return self._send(503, {"title": "Service Unavailable"}, Retry_After="0")
        return self._send(200, ok | {"result": {}})


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.seen, Gateway.tools_list_calls = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_refusals_mid_session_are_answers_and_the_session_goes_on(
    gateway: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
    env |= {"CONTROLROOM_URL": gateway, "CONTROLROOM_TOKEN": "t0ken"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "controlroom_cli", "mcp"], env=env
    )
    with (tmp_path / "stderr").open("w") as errlog:
        async with (
            asyncio.timeout(60),  # the old bridge died on the 429 and left the client waiting
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()  # a 429 first: retried after Retry-After
            assert [t.name for t in tools.tools] == ["get_run"]
            called = await session.call_tool("get_run", {"run_id": "r"})  # 401
            assert called.isError
            (content,) = called.content
            assert isinstance(content, TextContent)
            assert content.text == "401 Unauthorized: the token expired"
            with pytest.raises(McpError, match="503 Service Unavailable"):
                await session.list_resources()
            await session.send_ping()  # still alive
            assert [t.name for t in (await session.list_tools()).tools] == ["get_run"]

    methods = [method for method, _ in Gateway.seen]
    assert methods[:2] == ["ping", "initialize"]  # the start-up check, then the session
    assert methods.count("resources/list") == 3  # tried three times, then answered
    assert methods.count("tools/list") == 3
    for method, headers in Gateway.seen:
        assert headers["authorization"] == "Bearer t0ken"
        assert headers["accept"] == "application/json, text/event-stream"
        if method not in ("ping", "initialize"):
            assert headers["mcp-protocol-version"], method


def test_a_token_refused_at_start_up_is_one_line_and_exit_5(gateway: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
    env |= {"CONTROLROOM_URL": gateway, "CONTROLROOM_TOKEN": "refused"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "controlroom_cli", "mcp"],
        capture_output=True,
        text=True,
        input="",
        env=env,
        timeout=60,
    )
    assert done.returncode == 5, done.stderr
    assert done.stderr.splitlines() == [
        f"error: MCP at {gateway}/mcp: 401 Unauthorized: the token is refused"
    ]
    assert done.stdout == ""
