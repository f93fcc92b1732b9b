"""A whole Control Room that a test may break: its own nats-server (file store), its own
Postgres and the six services, each of which can be killed, stopped and started again.

Everything lives under one short temporary directory: Postgres puts its Unix socket in its data
directory, and a socket path must fit in 107 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from controlroom_devstack.infra import NatsServer, Postgres, free_port
from controlroom_devstack.memory import pids_by_cmdline
from controlroom_devstack.stack import SERVICES, ServiceStack, StackConfig

SERVICE_NAMES = tuple(s.name for s in SERVICES)
"""Every process of the stack, in start order (the gateway as its API and its projector)."""

KEEP_ENV = "CONTROLROOM_CHAOS_KEEP"
"""Set to keep a stack's directory (logs, data) after it stops, to read what happened."""


class ChaosStack:
    """nats-server + Postgres + the services, all of its own; ``start`` / ``stop`` the lot."""

    def __init__(self, *, jwt_secret: str, extra_env: Mapping[str, str], name: str = "chaos"):
        self.base = Path(tempfile.mkdtemp(prefix=f"cr-{name[:12]}-"))
        self.base.chmod(0o755)
        self.nats = NatsServer(self.base / "nats", log_file=self.base / "nats.log")
        self.postgres = Postgres(self.base / "pg", durable=False, database="chaos")
        self.services = ServiceStack(
            StackConfig(
                nats_url=self.nats.url,
                database_url=self.postgres.url(),
                jwt_secret=jwt_secret,
                logs_dir=self.base / "logs",
                workdir=self.base / "work",
                gateway_port=free_port(),
                extra_env=dict(extra_env),
            )
        )

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def url(self, service: str) -> str:
        return self.services.url(service)

    def start(self) -> None:
        self.nats.start()
        self.postgres.start()
        self.services.start(timeout=120)

    def stop(self) -> None:
        try:
            self.services.stop()
        finally:
            self.nats.stop()
            self.postgres.stop()
            if not os.environ.get(KEEP_ENV):
                shutil.rmtree(self.base, ignore_errors=True)

    # -- faults ---------------------------------------------------------------------------
    def pid(self, service: str) -> int:
        return self.services.processes[service].pid

    def pids(self) -> dict[str, int]:
        """The pid of each service's process (as it is now: a restart changes it) and of
        nats-server."""
        found = {name: process.pid for name, process in self.services.processes.items()}
        for pid in pids_by_cmdline(str(self.nats.store_dir)):
            found["nats-server"] = pid
        return found

    def kill(self, service: str) -> None:
        """``kill -9`` the service's process and reap it."""
        process = self.services.processes[service]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.services.log_event(service, "killed by the chaos suite (SIGKILL)", level="warning")

    async def restart(self, service: str, timeout: float = 120.0) -> None:
        """Start the service again (same port, same log) and wait until it is ready."""
        self.services.restart(service)
        self.services.log_event(service, "restarted by the chaos suite")
        await self.ready(service, timeout)

    async def ready(self, service: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url(service), timeout=2.0) as client:
            while time.monotonic() < deadline:
                process = self.services.processes[service]
                if process.poll() is not None:
                    raise RuntimeError(f"{service} exited with {process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{service} not ready after {timeout}s")

    async def all_ready(self, timeout: float = 120.0) -> None:
        for name in SERVICE_NAMES:
            await self.ready(name, timeout)

    def exited(self) -> dict[str, int]:
        """The services whose process has exited, with its return code (none, normally)."""
        return {
            name: code
            for name, process in self.services.processes.items()
            if (code := process.poll()) is not None
        }

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        """The last lines of each service's log (for a failed test's report)."""
        tails = []
        for path in sorted(self.services.config.logs_dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append((path.name, "\n".join(tail)))
        return tails
