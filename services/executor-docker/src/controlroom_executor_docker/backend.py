"""The seam between the executor and what actually runs a job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from controlroom_contracts.api import CodeBundle, FailureReason


@dataclass(frozen=True)
class RunSpec:
    run_id: UUID
    attempt: int
    tenant_id: str
    job_type: str
    code: CodeBundle
    inputs: dict[str, str]
    timeout_seconds: int


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int | None
    failure_reason: FailureReason | None
    """None when the job succeeded."""
    error: str | None = None
    stdout_tail: str = ""
    cancelled: bool = False
    files_dir: Path | None = None
    """Where the run left files to keep: ``output/`` (what the job wrote) and ``logs/``."""

    @property
    def succeeded(self) -> bool:
        return self.failure_reason is None and not self.cancelled


class ExecutionBackend(Protocol):
    """Runs one attempt to its end. Never raises for a job's own failure: it reports it."""

    sandboxed: bool
    """True when the job is isolated in a container; False for local processes."""

    async def run(self, spec: RunSpec) -> RunOutcome: ...

    def cancel(self, run_id: UUID) -> bool:
        """Stop the run if this backend runs it (or is about to); True if it was found."""
        ...
