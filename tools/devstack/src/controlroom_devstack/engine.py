"""Find or start a container engine that speaks the Docker Engine API.

Podman first, when it is installed: ``podman system service`` as a child process, serving a
socket in our own data directory, configured by a ``containers.conf`` of ours passed in
``CONTAINERS_CONF`` (nothing under ``/etc`` is written). Otherwise a Docker daemon that answers
on ``/var/run/docker.sock``. Otherwise none.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DOCKER_SOCKET = Path("/var/run/docker.sock")

CONTAINERS_CONF = """\
# Written by controlroom_devstack.engine; read by the Podman it starts (CONTAINERS_CONF).
[containers]
# Podman's default ulimits include values above the hard limits a process may raise to on
# hosts without CAP_SYS_RESOURCE; none by default, each container sets its own.
default_ulimits = []
"""
RUNC = """
[engine]
# crun fails on hosts with cgroups in hybrid mode ("cgroups in hybrid mode not supported").
runtime = "runc"
"""


@dataclass
class ContainerEngine:
    """A running engine: where its API is and how to stop it (if we started it)."""

    url: str
    """For aiodocker: ``unix:///.../podman.sock``."""
    name: str
    """``podman`` or ``docker``."""
    cli: str
    """The command-line tool for the same engine (image builds use it)."""
    env: dict[str, str] = field(default_factory=dict)
    """What the CLI needs in its environment to see the same configuration."""
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def stop(self) -> None:
        """Stop the service if we started it; containers it started are left as they are."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


def find_or_start_engine(data_dir: Path, *, timeout: float = 30.0) -> ContainerEngine | None:
    """Podman's service started under ``data_dir``, else a live Docker socket, else None."""
    podman = shutil.which("podman")
    if podman is not None:
        return start_podman(podman, data_dir, timeout=timeout)
    if DOCKER_SOCKET.is_socket() and ping(DOCKER_SOCKET):
        return ContainerEngine(f"unix://{DOCKER_SOCKET}", "docker", shutil.which("docker") or "")
    return None


def start_podman(podman: str, data_dir: Path, *, timeout: float = 30.0) -> ContainerEngine:
    """``podman system service --time=0`` on ``data_dir/podman.sock``, once it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "containers.conf"
    conf.write_text(CONTAINERS_CONF + (RUNC if shutil.which("runc") else ""))
    sock = data_dir / "podman.sock"
    sock.unlink(missing_ok=True)
    env = {"CONTAINERS_CONF": str(conf)}
    log = (data_dir / "podman.log").open("ab")
    process = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{sock}"],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C meant for the caller does not reach it first
    )
    engine = ContainerEngine(f"unix://{sock}", "podman", podman, env, process, log)
    deadline = time.monotonic() + timeout
    while not ping(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            engine.stop()
            raise RuntimeError(
                f"podman system service did not answer on {sock} within {timeout}s "
                f"(exit code {process.returncode}; see {data_dir / 'podman.log'})"
            )
        time.sleep(0.05)
    return engine


def ping(sock: Path, timeout: float = 2.0) -> bool:
    """True when the socket answers ``GET /_ping`` with ``200 OK``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(sock))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
    except OSError:
        return False
    status, _, rest = answer.partition(b"\r\n")
    return status.split()[1:2] == [b"200"] and rest.endswith(b"OK")
