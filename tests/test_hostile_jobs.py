"""Hostile jobs through the whole system: each run ends within its timeout plus the grace
period, leaves no process behind, stores a capped log, and nothing of the platform reaches it.

On the container backend (CI installs Podman) every case applies; on the local-process
backend the network case needs bubblewrap (a plain local process shares the host network).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stack import ServiceStack
from controlroom_devstack.waiting import eventually, until

from .test_end_to_end import job

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 5  # executor-docker's default kill grace


def _shell(receiver: CallbackReceiver, script: str, timeout: int = 20, **inputs: str) -> Any:
    body = job(receiver, "", timeout_seconds=timeout, retry={"max_attempts": 1})
    body["code"] = {"files": [{"path": "main.sh", "content": script}]}
    body["spec"]["inputs"].update(inputs)
    return body


async def _run(api: httpx.AsyncClient, body: Any, within: float) -> dict[str, Any]:
    started = time.monotonic()
    run_id = (await api.post("/api/v1/jobs/run", json=body)).json()["run_id"]

    async def ended() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if view["status"] in ("completed", "failed", "cancelled") else None

    view = await eventually(ended, timeout=within + 30, interval=0.2, what=f"run {run_id} ends")
    # Not a timing assertion on speed: the bound is the contract (timeout + grace), with
    # room for queueing, container start and reporting on a loaded machine.
    assert time.monotonic() - started < within + 30
    return view


def _now_ticks() -> int:
    """Now, in the clock ticks since boot that ``/proc/<pid>/stat`` gives start times in."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


STARTED = _now_ticks()
"""When this module was imported: processes older than it belong to something else."""


def _processes_matching(pattern: str) -> list[str]:
    """This suite's processes (started since it was imported) whose command matches."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        started = int(stat[stat.rindex(")") + 2 :].split()[19])
        if started >= STARTED and re.search(pattern, cmdline):
            found.append(f"{entry.name}: {cmdline}")
    return found


async def test_the_platforms_loopback_ports_are_out_of_reach(
    api: httpx.AsyncClient, receiver: CallbackReceiver, stack: ServiceStack, sandboxed: bool
) -> None:
    if not sandboxed and shutil.which("bwrap") is None:
        pytest.skip("a local process without bubblewrap shares the host's network")
    nats_port = stack.config.nats_url.rsplit(":", 1)[1]
    pg_port = re.search(r":(\d+)/", stack.config.database_url)
    assert pg_port is not None
    script = (
        "for port in $CONTROLROOM_INPUT_NATS $CONTROLROOM_INPUT_PG; do\n"
        '  if python3 -c "import socket, sys; socket.create_connection('
        "('127.0.0.1', int(sys.argv[1])), 2)\" $port 2>/dev/null\n"
        '  then echo "reached $port"; else echo "blocked $port"; fi\n'
        "done\n"
    )
    view = await _run(api, _shell(receiver, script, NATS=nats_port, PG=pg_port.group(1)), within=20)
    log = (await api.get(view["logs_url"])).text
    assert log.split() == ["blocked", nats_port, "blocked", pg_port.group(1)], log


async def test_the_data_directory_and_other_runs_are_out_of_reach(
    api: httpx.AsyncClient, receiver: CallbackReceiver, stack: ServiceStack
) -> None:
    logs = stack.config.logs_dir
    work = stack.config.workdir
    script = (
        f"cat ../../../logs/gateway.log {logs}/gateway.log 2>/dev/null && echo READ_LOG\n"
        f"ls {work} 2>/dev/null | grep -q . && echo LISTED_RUNS\n"
        # Another run's directory is named by its run id.
        "ls .. ../.. ../../.. 2>/dev/null | grep -Eq '^[0-9a-f]{8}-' && echo SAW_RUNS\n"
        "echo checked\n"
    )
    view = await _run(api, _shell(receiver, script), within=20)
    assert view["status"] == "completed", view
    log = (await api.get(view["logs_url"])).text
    assert log.split() == ["checked"], log


async def test_a_fork_bomb_ends_within_its_timeout_and_leaves_nothing(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    script = "bomb() { bomb | bomb & }\nbomb\nsleep 60\n"
    view = await _run(api, _shell(receiver, script, timeout=5), within=5 + GRACE_SECONDS)
    assert view["status"] == "failed", view
    assert view["failure_reason"] in ("timeout", "exit_code"), view
    await until(
        lambda: not _processes_matching(r"(^|/)(ba)?sh main\.sh"),
        timeout=15,
        what="no shell of the bomb left",
    )


async def test_a_daemon_escaping_the_process_group_does_not_outlive_the_run(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    script = "setsid sleep 307 > /dev/null 2>&1 < /dev/null &\necho escaped\n"
    view = await _run(api, _shell(receiver, script), within=20)
    assert view["status"] == "completed", view
    await until(
        lambda: not _processes_matching(r"sleep 307"),
        timeout=15,
        what="the escaped sleep is gone",
    )


async def test_a_flood_of_output_is_stored_capped(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    # 1 GiB to stdout, in lines of 1 KiB.
    script = (
        "python3 -c \"import sys\nline = 'x' * 1023 + '\\n'\n"
        'for _ in range(1 << 20): sys.stdout.write(line)"\n'
    )
    view = await _run(api, _shell(receiver, script, timeout=300), within=300 + GRACE_SECONDS)
    assert view["status"] == "completed", view
    stdout = next(a for a in view["artifacts"] if a["path"] == "logs/stdout.log")
    assert stdout["size_bytes"] < 11 << 20
    log = (await api.get(view["logs_url"])).text
    assert "output truncated" in log.splitlines()[-1]


async def test_filling_the_workspace_is_stopped(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    # The routing matrix gives diagram_export a 1 GiB workspace; this writes 3 GiB.
    script = "set -e\ndd if=/dev/zero of=big bs=1M count=3072\necho wrote it all\n"
    view = await _run(api, _shell(receiver, script, timeout=120), within=120 + GRACE_SECONDS)
    assert view["status"] == "failed", view
    assert view["failure_reason"] in ("exit_code", "timeout"), view
    # It never got past the write (its stdout, where that line would be, stayed empty).
    assert view["logs_url"] is None, view
    assert "limit of 1073741824 bytes" in view["error"], view  # the watchdog or fsize


def test_no_job_process_is_left_running() -> None:
    """After all of the above: nothing of any job runs on this machine any more."""
    leftovers = _processes_matching(r"(sleep 307|main\.sh|bomb)")
    assert leftovers == [], leftovers
