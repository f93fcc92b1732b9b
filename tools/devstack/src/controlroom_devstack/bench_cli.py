"""``make bench``, group ``cli``: start-up of the ``controlroom`` command line, and a trivial
job through the MCP server (issue [8]).

Wall time of a fresh process, as a person or a CI step sees it, for ``controlroom --help``
(nothing but the parser and the help text) and ``controlroom status <id>`` (configuration,
one GET to the API, the run printed), 20 runs each after two warm-up runs that leave Python's
bytecode caches written, as an installed package has them. The run asked about is a real one
(completed) on a system of its own: the gateway, its projector, the scheduler and
executor-docker (local processes).

MCP: one Streamable HTTP session (the official client SDK), as a coding agent holds it; for
each of 30 trivial jobs, ``submit_job`` then ``wait_for_run`` until it returns the run
completed, timed from the submit's call to the wait's answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from controlroom_devstack.bench_report import Row, median, ms, pct
from controlroom_devstack.infra import NatsServer, Postgres, free_port
from controlroom_devstack.stack import SERVICES, ServiceStack, StackConfig, mint_dev_token
from controlroom_devstack.waiting import eventually

TARGET = "< 300 ms (issue [8])"
MCP_RUNS = 30
TRIVIAL_JOB = {
    "job_type": "diagram_export",
    "spec": {"text": "bench cli"},
    "code": {"files": [{"path": "main.py", "content": "print('ok')"}]},
    "created_by": "bench",
}
TENANT = "bench-cli"
WARM_UP = 2
SCRIPT = Path(sys.executable).with_name("controlroom")


def cli(base: Path, postgres: Postgres, secret: str, runs: int = 20) -> tuple[list[Row], list[str]]:
    """Start a system of its own, measure, stop it."""
    if not SCRIPT.exists():
        return [], [f"cli: skipped, {SCRIPT} is missing (make install)."]
    postgres.create_database("bench_cli")
    nats_server = NatsServer(base / "nats-cli", log_file=base / "nats-cli.log")
    wanted = {"scheduler", "executor-docker", "gateway-projector", "gateway"}
    stack = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres.url("bench_cli"),
            jwt_secret=secret,
            logs_dir=base / "logs-cli",
            workdir=base / "work-cli",
            gateway_port=free_port(),
            extra_env={"CONTROLROOM_LOG_LEVEL": "WARNING", "CONTROLROOM_JOB_BACKEND": "local"},
        ),
        services=tuple(s for s in SERVICES if s.name in wanted),
    )
    try:
        nats_server.start()
        stack.start()
        token = mint_dev_token(secret, tenant=TENANT)
        run_id = asyncio.run(_completed_run(stack.url("gateway"), token))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its caches
        env.update(
            CONTROLROOM_URL=stack.url("gateway"),
            CONTROLROOM_TOKEN=token,
            XDG_CONFIG_HOME=str(base / "cli-config"),
        )
        rows: list[Row] = []
        notes: list[str] = []
        for label, args in (
            ("controlroom --help", ["--help"]),
            ("controlroom status <id>", ["status", run_id]),
        ):
            times = _wall_times([str(SCRIPT), *args], env, runs)
            rows.append(Row("cli", f"{label}, wall time p50", TARGET, ms(median(times))))
            notes.append(
                f"cli: {label}: min {ms(min(times))}, p90 {ms(pct(times, 90))}, "
                f"max {ms(max(times))} over {runs} runs"
            )
        trips = asyncio.run(_mcp_round_trips(stack.url("gateway"), token, MCP_RUNS))
        for label, q in (("p50", 50), ("p99", 99)):
            rows.append(
                Row("mcp", f"submit_job -> wait_for_run, {label}", "report", ms(pct(trips, q)))
            )
        notes.append(
            f"mcp: {MCP_RUNS} trivial jobs one after another over one Streamable HTTP session; "
            f"min {ms(min(trips))}, max {ms(max(trips))}; includes the scheduler's dispatch and "
            "the job's run as a local process."
        )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        notes.append(
            "cli: a fresh process each time (subprocess, stdout to a pipe), bytecode caches "
            f"written by the warm-up runs; the API on the same machine (load average {load})."
        )
        return rows, notes
    finally:
        stack.stop()
        nats_server.stop()


def _wall_times(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for n in range(WARM_UP + runs):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.decode()}")
        if n >= WARM_UP:
            times.append(elapsed)
    return times


async def _mcp_round_trips(url: str, token: str, runs: int) -> list[float]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    times: list[float] = []
    async with (
        httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(30, read=330)
        ) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for _ in range(WARM_UP + runs):
            started = time.perf_counter()
            submitted = await session.call_tool("submit_job", {"job": TRIVIAL_JOB})
            if submitted.isError or not submitted.structuredContent:
                raise RuntimeError(f"submit_job failed: {submitted.content}")
            run_id = submitted.structuredContent["run_id"]
            waited = await session.call_tool(
                "wait_for_run", {"run_id": run_id, "timeout_seconds": 60}
            )
            status = (waited.structuredContent or {}).get("status")
            if waited.isError or status != "completed":
                raise RuntimeError(f"run {run_id} did not complete: {waited.content}")
            times.append(time.perf_counter() - started)
    return times[WARM_UP:]


async def _completed_run(url: str, token: str) -> str:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        response = await api.post("/api/v1/jobs/run", json=TRIVIAL_JOB)
        response.raise_for_status()
        run_id: str = response.json()["run_id"]

        async def completed() -> bool:
            view = (await api.get(f"/api/v1/runs/{run_id}")).json()
            return bool(view["status"] == "completed")

        await eventually(completed, timeout=60, interval=0.1, what=f"run {run_id} completed")
        return run_id
