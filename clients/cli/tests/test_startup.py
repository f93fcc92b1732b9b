"""Start-up stays short (issue [8]: ``--help`` and ``status`` under 300 ms): what each path
imports is checked here, in a fresh interpreter; the time itself is ``make bench``'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

RUN = "0b1f5a52-6a3b-4b53-9d43-7d4b7a0e5a11"
VIEW = {
    "run_id": RUN,
    "job_type": "diagram_export",
    "status": "running",
    "created_by": "tests",
    "created_at": "2026-12-05T10:00:00Z",
    "attempt": 1,
    "max_attempts": 3,
    "artifacts": [],
}


class _RunView(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        body = json.dumps(VIEW).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RunView)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def imported(args: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    """The top-level packages a fresh ``controlroom <args>`` imports, and its stdout."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "controlroom_cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return modules, done.stdout


def test_help_imports_neither_http_nor_rich_nor_yaml() -> None:
    modules, out = imported(["--help"], {})
    assert "Usage: controlroom" in out
    assert not modules & {"httpx", "httpcore", "rich", "yaml", "jwt", "pydantic", "pygments"}


def test_status_imports_no_yaml_rich_jwt_or_httpx_command_line(api_url: str) -> None:
    modules, out = imported(["status", RUN], {"CONTROLROOM_URL": api_url})
    assert "running" in out
    assert "httpx" in modules
    assert not modules & {"rich", "yaml", "jwt", "pygments", "click", "controlroom_contracts"}
