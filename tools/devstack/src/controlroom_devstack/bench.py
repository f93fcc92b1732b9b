"""``make bench``: start the system, run scenarios, print measured beside target.

Scenarios (one run of each; numbers are for this machine, printed, never asserted), in the
order they run, each group selectable with ``--only``:
  * ``dispatch``: the scheduler alone dispatching a backlog of 10,000 queued runs, and
    ``fairness``: one tenant's deep queue must not delay another's run (``bench_scheduler``);
  * ``end-to-end``: submit -> callback received for a trivial job, one at a time, with where
    the time and CPU go; then sustained runs/s with 50 in flight (``bench_end_to_end``);
  * ``cancel``: a running run cancelled through the API, and ``recovery``: executor-docker
    killed with SIGKILL mid-run until the retry is decided (``bench_failures``);
  * ``gateway``: the API alone, open and closed loop (``bench_gateway``; last, as it leaves
    runs queued for an executor kind nobody serves);
  * ``containers``: jobs in containers through Podman's (or Docker's) API: dispatch ->
    container started, container exited -> terminal event, runs/s of one executor replica,
    submit -> callback (``bench_containers``; skipped, saying so, without an engine);
  * ``lineage``: a synthetic estate of 10 k, 100 k and 1 M edges loaded through the
    OpenLineage endpoint, then upstream and downstream graph queries at depth 1, 3 and 5
    (``bench_lineage``; ``--lineage-edges`` picks the sizes: 1 M takes several minutes);
  * ``ui``: the Runboard in headless chromium: scheduler decision -> card updated on an open
    board, first paint of the board with 10,000 runs, and the screenshots in docs/
    (``bench_ui``; skipped, saying so, without /usr/bin/chromium);
  * ``cli``: ``controlroom --help`` and ``controlroom status <id>`` wall time, fresh processes,
    and MCP ``submit_job`` -> ``wait_for_run`` for a trivial job (``bench_cli``; a system of
    its own).
The whole-system groups run jobs on the local-process backend (the issue's throughput target
is set for it); ``containers`` starts a stack of its own on the engine, ``lineage`` one
of the gateway and the lineage service only, and ``ui`` a whole system of its own.
A scenario that misses its target says where the time goes in the notes under the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from controlroom_devstack import (
    bench_cli,
    bench_containers,
    bench_end_to_end,
    bench_failures,
    bench_gateway,
    bench_lineage,
    bench_scheduler,
    bench_ui,
)
from controlroom_devstack.bench_report import Row, print_table
from controlroom_devstack.infra import NatsServer, Postgres, free_port
from controlroom_devstack.sandbox import job_sandbox
from controlroom_devstack.stack import SERVICES, ServiceStack, StackConfig, mint_dev_token

SECRET = "bench-secret-bench-secret-bench-secret"
GROUPS = (
    "dispatch",
    "fairness",
    "end-to-end",
    "cancel",
    "recovery",
    "gateway",
    "containers",
    "lineage",
    "ui",
    "cli",
)


def _groups(value: str) -> list[str]:
    chosen = [g.strip() for g in value.split(",") if g.strip()]
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(GROUPS)}")
    return chosen


def _sizes(value: str) -> list[int]:
    try:
        return bench_lineage.parse_sizes(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m controlroom_devstack.bench")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--total", type=int, default=400)
    parser.add_argument("--capacity", type=int, default=16, help="executor-docker runs at once")
    parser.add_argument("--rate", type=float, default=200.0, help="gateway scenario req/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="gateway scenario length")
    parser.add_argument("--backlog", type=int, default=10_000, help="dispatch scenario runs")
    parser.add_argument("--tenants", type=int, default=10, help="dispatch scenario tenants")
    parser.add_argument("--waiting", type=int, default=1000, help="fairness: tenant A's runs")
    parser.add_argument("--submits", type=int, default=50, help="fairness: tenant B's runs")
    parser.add_argument("--tries", type=int, default=10, help="recovery and cancel tries")
    parser.add_argument("--container-runs", type=int, default=30, help="containers: sequential")
    parser.add_argument("--container-total", type=int, default=60, help="containers: sustained")
    parser.add_argument(
        "--lineage-edges",
        type=_sizes,
        default=list(bench_lineage.SIZES),
        help="lineage: comma-separated estate sizes in edges, e.g. 10000,100000,1000000 "
        "(10k,100k,1m too)",
    )
    parser.add_argument(
        "--lineage-clients", type=int, default=32, help="lineage: concurrent producers"
    )
    parser.add_argument(
        "--lineage-queries",
        type=int,
        default=200,
        help="lineage: queries per size, direction and depth",
    )
    parser.add_argument(
        "--only",
        type=_groups,
        default=list(GROUPS),
        help=f"comma-separated scenario groups, of: {','.join(GROUPS)} (default: all)",
    )
    args = parser.parse_args()
    only = set(args.only)

    base = Path(tempfile.mkdtemp(prefix="controlroom-bench-"))
    base.chmod(0o755)
    postgres = Postgres(base / "pg", database="bench")
    rows: list[Row] = []
    notes: list[str] = [""]
    t_start = time.monotonic()
    try:
        postgres.start()
        if "dispatch" in only:
            env = {"CONTROLROOM_TENANT_MAX_CONCURRENT": "100000"}
            with bench_scheduler.scheduler_stack(base, postgres, "dispatch", env) as alone:
                r, n = asyncio.run(
                    bench_scheduler.dispatch_rate(alone, postgres, args.backlog, args.tenants)
                )
                rows, notes = rows + r, notes + n
        if "fairness" in only:
            with bench_scheduler.scheduler_stack(base, postgres, "fairness", {}) as alone:
                r, n = asyncio.run(
                    bench_scheduler.fairness(alone, postgres, args.waiting, args.submits)
                )
                rows, notes = rows + r, notes + n
        if only & {"dispatch", "fairness"}:
            notes.append(
                "dispatch and fairness: the scheduler alone, at nice 0, with a nats-server and a "
                "database of its own for each; no real executor, a stand-in's heartbeats only."
            )
        if only & {"end-to-end", "cancel", "recovery", "gateway"}:
            r, n = _whole_system(base, postgres, args, only)
            rows, notes = rows + r, notes + n
        if "containers" in only:
            r, n = _in_containers(base, postgres, args)
            rows, notes = rows + r, notes + n
        if "lineage" in only:
            r, n = _lineage(base, postgres, args)
            rows, notes = rows + r, notes + n
        if "ui" in only:
            r, n = bench_ui.ui(base, postgres, SECRET)
            rows, notes = rows + r, notes + n
        if "cli" in only:
            r, n = bench_cli.cli(base, postgres, SECRET)
            rows, notes = rows + r, notes + n
        notes.append(
            f"machine: {os.cpu_count()} cores; bench ran {time.monotonic() - t_start:.0f}s"
        )
        print_table(rows, notes)
        return 0
    finally:
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


def _in_containers(
    base: Path, postgres: Postgres, args: argparse.Namespace
) -> tuple[list[Row], list[str]]:
    sandbox = job_sandbox(base / "containers")
    if sandbox.engine is None:
        return [], ["containers: skipped, no container engine (install podman)."]
    postgres.create_database("bench_containers")
    nats_server = NatsServer(base / "nats-containers", log_file=base / "nats-containers.log")
    stack = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres.url("bench_containers"),
            jwt_secret=SECRET,
            logs_dir=base / "logs-containers",
            workdir=base / "work-containers",
            gateway_port=free_port(),
            extra_env={
                "CONTROLROOM_CALLBACK_ALLOWLIST": '["127.0.0.0/8"]',
                "CONTROLROOM_EXECUTOR_CAPACITY": str(args.capacity),
                "CONTROLROOM_LOG_LEVEL": "WARNING",
                **sandbox.env,
            },
        )
    )
    try:
        nats_server.start()
        stack.start()
        token = mint_dev_token(SECRET, tenant="bench-containers")
        rows, notes = asyncio.run(
            bench_containers.containers(
                stack, postgres, token, args.container_runs, args.container_total, args.capacity
            )
        )
        notes.append(f"containers: {sandbox.describe()}; capacity {args.capacity}.")
        return rows, notes
    finally:
        stack.stop()
        nats_server.stop()
        sandbox.stop()


def _lineage(
    base: Path, postgres: Postgres, args: argparse.Namespace
) -> tuple[list[Row], list[str]]:
    """The gateway and the lineage service, nothing else, on a database of their own."""
    postgres.create_database("bench_lineage")
    nats_server = NatsServer(base / "nats-lineage", log_file=base / "nats-lineage.log")
    stack = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres.url("bench_lineage"),
            jwt_secret=SECRET,
            logs_dir=base / "logs-lineage",
            workdir=base / "work-lineage",
            gateway_port=free_port(),
            extra_env={"CONTROLROOM_LOG_LEVEL": "WARNING"},
            # The lineage service answers the API's requests itself here (request-reply), so
            # it is on the critical path, not a queue worker to give way.
            background_nice=0,
        ),
        services=tuple(s for s in SERVICES if s.name in ("lineage", "gateway")),
    )
    try:
        nats_server.start()
        stack.start()
        tokens = {
            edges: mint_dev_token(SECRET, tenant=bench_lineage.tenant(edges))
            for edges in args.lineage_edges
        }
        return asyncio.run(
            bench_lineage.lineage(
                stack,
                postgres,
                tokens,
                args.lineage_edges,
                args.lineage_clients,
                args.lineage_queries,
            )
        )
    finally:
        stack.stop()
        nats_server.stop()


def _whole_system(
    base: Path, postgres: Postgres, args: argparse.Namespace, only: set[str]
) -> tuple[list[Row], list[str]]:
    nats_server = NatsServer(base / "nats", log_file=base / "nats.log")
    silence = float(os.environ.get("CONTROLROOM_EXECUTOR_SILENCE_SECONDS", "15"))
    stack = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres.url(),
            jwt_secret=SECRET,
            logs_dir=base / "logs",
            workdir=base / "work",
            gateway_port=free_port(),
            extra_env={
                "CONTROLROOM_CALLBACK_ALLOWLIST": '["127.0.0.0/8"]',
                "CONTROLROOM_ROUTES": json.dumps(
                    {bench_gateway.GATEWAY_ONLY_JOB_TYPE: "bench-null"}
                ),
                "CONTROLROOM_EXECUTOR_CAPACITY": str(args.capacity),
                "CONTROLROOM_LOG_LEVEL": "WARNING",
                # The throughput target is set for the local-process backend.
                "CONTROLROOM_JOB_BACKEND": "local",
            },
        )
    )
    rows: list[Row] = []
    notes: list[str] = []
    try:
        nats_server.start()
        t0 = time.perf_counter()
        stack.start()
        startup = time.perf_counter() - t0
        if "end-to-end" in only:
            token = mint_dev_token(SECRET, tenant="bench")
            r, n = asyncio.run(
                bench_end_to_end.end_to_end(
                    stack, postgres, token, args.runs, args.in_flight, args.total
                )
            )
            rows, notes = rows + r, notes + n
        if only & {"cancel", "recovery"}:
            r, n = asyncio.run(_failures(stack, args.tries, silence, only))
            rows, notes = rows + r, notes + n
        if "gateway" in only:
            token = mint_dev_token(SECRET, tenant="bench-gw")
            rows += asyncio.run(
                bench_gateway.gateway_scenarios(stack, token, args.rate, args.seconds)
            )
        notes.append(
            f"whole system: executor-docker local-process backend, capacity {args.capacity}; "
            "Postgres with fsync on; six services (the gateway as API + read-model projector), "
            "NATS, Postgres and the bench client on the same machine; background services at "
            f"nice {stack.config.background_nice}; started and ready in {startup:.1f}s."
        )
        return rows, notes
    finally:
        stack.stop()
        nats_server.stop()


async def _failures(
    stack: ServiceStack, tries: int, silence: float, only: set[str]
) -> tuple[list[Row], list[str]]:
    token = mint_dev_token(SECRET, tenant="bench-failures")
    rows: list[Row] = []
    notes: list[str] = []
    async with httpx.AsyncClient(
        base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        if "cancel" in only:
            r, n = await bench_failures.cancellation(stack, api, tries)
            rows, notes = rows + r, notes + n
        if "recovery" in only:
            r, n = await bench_failures.recovery(stack, api, tries, silence)
            rows, notes = rows + r, notes + n
    return rows, notes


if __name__ == "__main__":
    raise SystemExit(main())
