"""The seam between the executor runtime and what actually runs a job.

The runtime (claim, supervise, report) is the same for every engine; a backend only knows how
to start one attempt, follow its output, wait for it, stop it, copy out its files and remove
it, and how to find again the attempts it started before a restart (by their labels).

A backend never decides a run's fate: it says how the attempt's process ended (:class:`Exit`)
and the runtime turns that into a report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from uuid import UUID

from controlroom_contracts.api import CodeBundle, FailureReason
from controlroom_contracts.routing import ExecutionProfile

Stream = Literal["stdout", "stderr"]

LABEL_PREFIX = "io.controlroom"
"""Every container, Job or process an executor starts carries these labels."""


@dataclass(frozen=True, order=True)
class AttemptKey:
    run_id: UUID
    attempt: int

    def name(self) -> str:
        """A DNS-1123 friendly name, unique per attempt: ``cr-<run id>-<attempt>``."""
        return f"cr-{self.run_id}-{self.attempt}"


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a backend needs to start one attempt."""

    key: AttemptKey
    tenant_id: str
    job_type: str
    executor_id: str
    code: CodeBundle
    """The code files; a backend that cannot share a directory (Kubernetes) ships these."""
    workspace: Path
    """A host directory already holding the code files (and a checked-out repository), which
    the job sees as ``/workspace``; what it writes under ``output/`` there is collected."""
    command: list[str]
    """The full command, relative to ``/workspace`` (``["python3", "-I", "main.py"]``)."""
    env: dict[str, str]
    """The job's whole environment: nothing else of the executor's reaches it."""
    profile: ExecutionProfile
    timeout_seconds: int
    secrets: frozenset[str] = field(default_factory=frozenset)
    """Values that must never appear in anything stored (redacted from logs by the runtime)."""

    def labels(self) -> dict[str, str]:
        """What identifies the attempt on the engine, so a restarted executor finds it."""
        return {
            f"{LABEL_PREFIX}.executor": self.executor_id,
            f"{LABEL_PREFIX}.tenant": self.tenant_id,
            f"{LABEL_PREFIX}.run": str(self.key.run_id),
            f"{LABEL_PREFIX}.attempt": str(self.key.attempt),
        }


@dataclass(frozen=True)
class Exit:
    """How an attempt's process ended, as the engine saw it."""

    exit_code: int | None
    failure_reason: FailureReason | None = None
    """None: the process exited by itself (the runtime reads ``exit_code``); otherwise what
    the engine knows beyond the code (``oom``, ``image_pull``, ``evicted``...)."""
    error: str | None = None


class LaunchFailed(Exception):
    """The attempt could not be started (image missing, engine refused): nothing runs."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RunningAttempt(Protocol):
    """One started attempt on an engine."""

    key: AttemptKey
    handle: str
    """The engine's name for it (container id, Job name, pid)."""

    def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        """The job's stdout and stderr from the beginning, as chunks, until it exits.

        Re-adopted attempts replay from the beginning too (the runtime de-duplicates)."""
        ...

    async def wait(self) -> Exit:
        """Until the process has exited; safe to call again after it has."""
        ...

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds``; leaves no process behind. Returns
        once nothing of the attempt runs any more."""
        ...

    async def collect(self, into: Path) -> None:
        """Copy the regular files under ``/workspace/output`` (never following a symlink)
        into ``into``; called once the attempt has exited."""
        ...

    async def remove(self) -> None:
        """Remove whatever is left on the engine (container, Job, directories)."""
        ...


class ExecutionBackend(Protocol):
    name: str
    """What the banner and logs call it: ``podman``, ``docker``, ``kubernetes``, ``local``."""
    sandboxed: bool
    """True when a job is isolated in a container; False for local processes."""
    shares_workspace: bool
    """True when the job sees ``AttemptSpec.workspace`` itself (a bind mount or the local
    directory); False when the backend ships the code files (Kubernetes)."""

    async def launch(self, spec: AttemptSpec) -> RunningAttempt:
        """Create and start the attempt; raises :class:`LaunchFailed`."""
        ...

    async def adopt(self, executor_id: str) -> dict[AttemptKey, RunningAttempt]:
        """Attempts this executor started that the engine still has (running or exited)."""
        ...

    async def close(self) -> None: ...
