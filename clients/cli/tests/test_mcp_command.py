"""``controlroom mcp`` without a usable gateway: one line on stderr and a documented exit code,
never a traceback; and the ``mcp`` SDK stays out of every other command's start-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from .test_startup import imported


def _mcp(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlroom_cli", "mcp"],
        capture_output=True,
        text=True,
        input="",
        env={**os.environ, **env},
        timeout=60,
    )


def test_without_a_token_it_is_a_usage_error() -> None:
    done = _mcp({"CONTROLROOM_TOKEN": ""})
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines() == [
        "error: no token: set CONTROLROOM_TOKEN or a profile's token"
    ]
    assert done.stdout == ""  # stdout is the MCP channel: nothing else is written there


def test_an_unreachable_gateway_is_one_line_and_exit_5() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    done = _mcp({"CONTROLROOM_URL": f"http://127.0.0.1:{port}", "CONTROLROOM_TOKEN": "t"})
    assert done.returncode == 5, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: MCP at http://127.0.0.1:{port}/mcp: "), line
    assert done.stdout == ""


def test_other_commands_do_not_import_the_mcp_sdk() -> None:
    modules, out = imported(["--help"], {})
    assert "mcp" in out  # the command is listed
    assert "mcp" not in modules and "anyio" not in modules
