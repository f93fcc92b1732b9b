"""The six services as separate processes (the gateway as two: its API and its read-model
projector), started in order and waited on until ready.

Only the API answers clients while they wait; every other process works through a queue. On
one small machine they all share the same cores, so the background processes run at a lower
CPU priority (``StackConfig.background_nice``): the operating system then lets a request
through first and the queues drain in the time left, which is what a deployment expresses
with separate nodes or CPU requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx

from controlroom_devstack.infra import free_port


def mint_dev_token(secret: str, tenant: str = "dev", role: str = "operator") -> str:
    """A bearer token from the gateway's own CLI (devstack never imports a service's code)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "controlroom_gateway",
            "token",
            "--tenant",
            tenant,
            "--role",
            role,
            "--sub",
            "developer",
        ],
        env=dict(os.environ, CONTROLROOM_JWT_SECRET=secret),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str
    env_key: str
    args: tuple[str, ...] = ()
    background: bool = True
    """Works through a queue rather than answering a waiting client."""
    secrets: frozenset[str] = frozenset()
    """The secret variables it is given; every other service never holds them (a job that
    reads its executor's environment must find no signing key)."""


SECRET_VARIABLES = frozenset({"CONTROLROOM_JWT_SECRET", "CONTROLROOM_WEBHOOK_SECRET"})
_JWT = frozenset({"CONTROLROOM_JWT_SECRET"})

# The gateway starts last: once it answers /readyz, everything behind it is ready too.
SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("scheduler", "controlroom_scheduler", "SCHEDULER"),
    ServiceDef("executor-docker", "controlroom_executor_docker", "EXECUTOR_DOCKER"),
    ServiceDef("executor-k8s", "controlroom_executor_k8s", "EXECUTOR_K8S"),
    ServiceDef("lineage", "controlroom_lineage", "LINEAGE"),
    ServiceDef(
        "notifier",
        "controlroom_notifier",
        "NOTIFIER",
        secrets=frozenset({"CONTROLROOM_WEBHOOK_SECRET"}),
    ),
    ServiceDef(
        "gateway-projector",
        "controlroom_gateway",
        "GATEWAY_PROJECTOR",
        ("projector",),
        secrets=_JWT,
    ),
    ServiceDef("gateway", "controlroom_gateway", "GATEWAY", background=False, secrets=_JWT),
)


@dataclass
class StackConfig:
    nats_url: str
    database_url: str
    jwt_secret: str
    logs_dir: Path
    workdir: Path
    artifacts_dir: Path | None = None
    gateway_port: int = 8789
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    background_nice: int = 10
    """Niceness of the background services (0: the same priority as the API)."""

    def port(self, service: ServiceDef) -> int:
        if service.name == "gateway":
            return self.gateway_port
        if service.name not in self.ports:
            self.ports[service.name] = free_port()
        return self.ports[service.name]


class ServiceStack:
    def __init__(self, config: StackConfig, services: tuple[ServiceDef, ...] = SERVICES) -> None:
        """``services`` in start order; the last one is started once the others are ready."""
        self.config = config
        self.services = services
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # One handle per service, kept across restarts: a restarted process appends to it.
        self._logs: dict[str, IO[bytes]] = {}

    def _service(self, name: str) -> ServiceDef:
        return next(s for s in self.services if s.name == name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.config.port(self._service(name))}"

    def log_path(self, name: str) -> Path:
        return self.config.logs_dir / f"{name}.log"

    async def backlog(self) -> int:
        """Events not yet handled by every consumer of the event stream (pending or unacked)."""
        import nats

        client = await nats.connect(self.config.nats_url)
        try:
            js = client.jetstream()
            total = 0
            for info in await js.consumers_info("CONTROLROOM_EVENTS"):
                total += (info.num_pending or 0) + (info.num_ack_pending or 0)
            return total
        finally:
            await client.close()

    def _env(self, service: ServiceDef) -> dict[str, str]:
        c = self.config
        env = dict(os.environ)
        env.update(
            {
                "CONTROLROOM_NATS_URL": c.nats_url,
                "CONTROLROOM_DATABASE_URL": c.database_url,
                "CONTROLROOM_EXECUTOR_WORKDIR": str(c.workdir),
                "CONTROLROOM_OBJECT_STORE__DIRECTORY": str(
                    c.artifacts_dir or c.workdir.parent / "artifacts"
                ),
                f"CONTROLROOM_{service.env_key}_PORT": str(c.port(service)),
                # The projector process keeps the read model; the API only answers.
                "CONTROLROOM_READ_MODEL": "separate",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(c.extra_env)
        env["CONTROLROOM_JWT_SECRET"] = c.jwt_secret
        return {k: v for k, v in env.items() if k not in SECRET_VARIABLES or k in service.secrets}

    def start(self, timeout: float = 60.0) -> None:
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        *backends, front = self.services
        for service in backends:
            self._spawn(service)
        for service in backends:
            self._wait_ready(service, timeout)
        self._spawn(front)
        self._wait_ready(front, timeout)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` again once its process has exited: the same command, environment and
        port (``StackConfig.port`` chose it once), its output appended to the same log file.

        It does not wait for readiness, so a supervisor calling it never stalls the others.
        """
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {process.pid})")
        return self._spawn(self._service(name))

    def log_event(self, name: str, event: str, *, level: str = "info", **fields: object) -> None:
        """Append one JSON line about ``name`` to its log, in the shape its own lines have."""
        entry = {
            "ts": datetime.now(UTC).isoformat(),
            "level": level,
            "service": name,
            "logger": "controlroom_devstack",
            "event": event,
            **fields,
        }
        log = self._log(name)
        log.write(json.dumps(entry).encode() + b"\n")
        log.flush()

    def _log(self, name: str) -> IO[bytes]:
        if name not in self._logs:
            self._logs[name] = open(self.log_path(name), "ab")  # noqa: SIM115
        return self._logs[name]

    def _spawn(self, service: ServiceDef) -> subprocess.Popen[bytes]:
        nice = self.config.background_nice if service.background else 0
        process = subprocess.Popen(
            [*(["nice", "-n", str(nice)] if nice else []), sys.executable, "-m", service.module]
            + list(service.args),
            env=self._env(service),
            stdout=self._log(service.name),
            stderr=subprocess.STDOUT,
        )
        self.processes[service.name] = process
        return process

    def _wait_ready(self, service: ServiceDef, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.config.port(service)}/readyz"
        deadline = time.monotonic() + timeout
        process = self.processes[service.name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {process.returncode}; see "
                    f"{self.log_path(service.name)}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{service.name} not ready after {timeout}s")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every service (gateway first), then SIGKILL what outlives the grace period."""
        for name in reversed([s.name for s in self.services]):
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
