"""`make up`'s launcher: starts everything, answers, stops cleanly on Ctrl-C, keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controlroom_devstack.infra import free_port

pytestmark = pytest.mark.e2e

SECRET = "make-up-secret-make-up-secret-make-up"


def _start(home: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        CONTROLROOM_HOME=str(home),
        CONTROLROOM_JWT_SECRET=SECRET,
        CONTROLROOM_GATEWAY_PORT=str(ports["gateway"]),
        CONTROLROOM_DEV_NATS_PORT=str(ports["nats"]),
        CONTROLROOM_DEV_PG_PORT=str(ports["pg"]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "controlroom_devstack", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("gateway never became ready")


def _interrupt(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_up_serves_the_api_stops_on_ctrl_c_and_keeps_data_for_the_next_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = {"gateway": free_port(), "nats": free_port(), "pg": free_port()}
    api = f"http://127.0.0.1:{ports['gateway']}"

    first = _start(home, ports)
    try:
        _wait_ready(api, first)
        token = subprocess.run(
            [sys.executable, "-m", "controlroom_gateway", "token", "--tenant", "dev"],
            env=dict(os.environ, CONTROLROOM_JWT_SECRET=SECRET),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "job_type": "diagram_export",
            "spec": {"text": "hello"},
            "code": {"files": [{"path": "main.py", "content": "print('hi')"}]},
            "created_by": "test",
        }
        run_id = httpx.post(f"{api}/api/v1/jobs/run", json=body, headers=headers).json()["run_id"]
        deadline = time.monotonic() + 30
        while (
            httpx.get(f"{api}/api/v1/runs/{run_id}", headers=headers).json()["status"]
            != "completed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        output = _interrupt(first)
    assert f"{api}/docs" in output and "curl" in output
    ui_link = next(w for w in output.split() if w.startswith(f"{api}/ui/#/signin?token="))
    ui_token = ui_link.rpartition("token=")[2]
    assert f"export TOKEN={ui_token}" in output  # the link signs in the development operator
    assert all(f"export {n}=" in output for n in ("TOKEN", "VIEWER_TOKEN", "ADMIN_TOKEN"))
    assert output.rstrip().endswith("stopped")
    assert (home / "logs" / "gateway.log").exists()

    second = _start(home, ports)
    try:
        _wait_ready(api, second)
        view = httpx.get(f"{api}/api/v1/runs/{run_id}", headers=headers).json()
        assert view["status"] == "completed"
    finally:
        _interrupt(second)
