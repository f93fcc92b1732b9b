"""``python -m controlroom_devstack up|down|logs``: the whole system on one machine.

``up`` starts nats-server and Postgres (data under ``$CONTROLROOM_HOME``, default
``.controlroom/``), then the six services (the gateway as API + projector), waits until all
are ready, prints where the API is, and runs until Ctrl-C or ``down``, restarting (with
backoff) any service whose process exits. A second ``up`` keeps the data.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from controlroom_devstack.infra import NatsServer, Postgres
from controlroom_devstack.sandbox import JobSandbox, job_sandbox
from controlroom_devstack.stack import SERVICES, ServiceStack, StackConfig, mint_dev_token
from controlroom_devstack.supervisor import Supervisor

LOOPBACK_ALLOWLIST = '["127.0.0.0/8", "::1/128", "localhost"]'


def _home() -> Path:
    return Path(os.environ.get("CONTROLROOM_HOME", ".controlroom")).resolve()


def _jwt_secret(home: Path) -> str:
    if secret := os.environ.get("CONTROLROOM_JWT_SECRET"):
        return secret
    path = home / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _banner(api: str, tokens: dict[str, str], started_in: float, logs: Path, jobs: str) -> str:
    sample = (
        '{"job_type": "diagram_export", "spec": {"text": "hello", "inputs": '
        '{"source": "raw.events", "target": "gold.events"}}, "code": {"files": '
        '[{"path": "main.py", "content": "print(\\"hello from Control Room\\")"}]}, '
        '"created_by": "curl"}'
    )
    return f"""
Control Room is up ({started_in:.1f}s)

  Runboard   {api}/ui/#/signin?token={tokens["operator"]}
             (the UI, signed in as a development operator)
  API        {api}/api/v1
  API docs   {api}/docs
  readiness  {api}/readyz
  logs       {logs}/<service>.log   (make logs SERVICE=gateway)
  jobs run   {jobs}

  development tokens (tenant "dev", 24 h):
    export TOKEN={tokens["operator"]}
    export VIEWER_TOKEN={tokens["viewer"]}
    export ADMIN_TOKEN={tokens["admin"]}
  (viewer reads; operator also submits, cancels and pushes events; admin also administers)

  submit a sample job:
    curl -s -X POST {api}/api/v1/jobs/run -H "Authorization: Bearer $TOKEN" \\
      -H 'content-type: application/json' -d '{sample}'
  then follow it:
    curl -s {api}/api/v1/runs/<run_id> -H "Authorization: Bearer $TOKEN"

Ctrl-C (or make down) stops everything; the data stays under {logs.parent}.
""".rstrip()


def up() -> int:
    started = time.monotonic()
    home = _home()
    for sub in ("nats", "logs", "work", "artifacts"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    # Traversable, not listable: a local job's user passes through to its own workspace and
    # finds nothing else it may read (the logs and artifacts are the services' alone).
    home.chmod(0o711)
    for private in ("logs", "artifacts"):
        (home / private).chmod(0o700)
    (home / "up.pid").write_text(str(os.getpid()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    nats = NatsServer(
        home / "nats",
        port=int(os.environ.get("CONTROLROOM_DEV_NATS_PORT", "4222")),
        log_file=home / "logs" / "nats.log",
    )
    postgres = Postgres(
        home / "pgdata", port=int(os.environ.get("CONTROLROOM_DEV_PG_PORT", "54329"))
    )
    stack: ServiceStack | None = None
    sandbox: JobSandbox | None = None
    try:
        print("starting the container engine (building job images the first time) ...")
        sandbox = job_sandbox(home)
        print("starting nats-server and Postgres ...", flush=True)
        postgres.stop()  # a server left running by an interrupted earlier run
        nats.start()
        postgres.start()
        secret = _jwt_secret(home)
        stack = ServiceStack(
            StackConfig(
                nats_url=nats.url,
                database_url=postgres.url(),
                jwt_secret=secret,
                logs_dir=home / "logs",
                workdir=home / "work",
                gateway_port=int(os.environ.get("CONTROLROOM_GATEWAY_PORT", "8789")),
                # A callback receiver on this machine works out of the box.
                extra_env={"CONTROLROOM_CALLBACK_ALLOWLIST": LOOPBACK_ALLOWLIST, **sandbox.env},
            )
        )
        print(f"starting {', '.join(s.name for s in SERVICES)} ...", flush=True)
        stack.start()
        api = stack.url("gateway")
        print(
            _banner(
                api,
                {
                    role: mint_dev_token(secret, role=role)
                    for role in ("viewer", "operator", "admin")
                },
                time.monotonic() - started,
                home / "logs",
                sandbox.describe(),
            ),
            flush=True,
        )
        # Returns only once stop is set, so the stack.stop() below never races a restart.
        Supervisor(stack, stop).run()
        return 0
    except Exception as exc:
        print(f"make up failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping ...", flush=True)
        if stack is not None:
            stack.stop()
        postgres.stop()
        nats.stop()
        if sandbox is not None:
            sandbox.stop()
        (home / "up.pid").unlink(missing_ok=True)
        print("stopped", flush=True)


def down() -> int:
    pid_file = _home() / "up.pid"
    if not pid_file.exists():
        print("Control Room is not running (no up.pid)")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        Postgres(_home() / "pgdata").stop()
        print("stale up.pid removed")
        return 0
    for _ in range(300):
        if not pid_file.exists():
            print("stopped")
            return 0
        time.sleep(0.1)
    print("still stopping; check the up process", file=sys.stderr)
    return 1


def logs(service: str | None) -> int:
    directory = _home() / "logs"
    files = [directory / f"{service}.log"] if service else sorted(directory.glob("*.log"))
    return subprocess.call(["tail", "-n", "50", "-F", *map(str, files)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlroom_devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything in the foreground")
    commands.add_parser("down", help="stop a running `up`")
    log_cmd = commands.add_parser("logs", help="follow service logs")
    log_cmd.add_argument("service", nargs="?", choices=[s.name for s in SERVICES] + ["nats"])
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    return logs(args.service)


if __name__ == "__main__":
    sys.exit(main())
