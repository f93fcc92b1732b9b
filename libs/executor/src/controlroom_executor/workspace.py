"""An attempt's directory on the executor's disk, and what the job is given to run.

``<workdir>/<run id>/<attempt>/`` holds ``workspace/`` (the job's ``/workspace``: a checked-out
repository, then the code files laid over it), ``logs/`` (the capped logs) and ``output/``
(the files collected once the job has exited).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from controlroom_contracts.api import FailureReason
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.routing import ExecutionProfile
from controlroom_executor.backend import AttemptKey, LaunchFailed
from controlroom_executor.checkout import CheckoutFailed, CheckoutSettings, check_out

log = logging.getLogger(__name__)

PrepareWorkspace = Callable[[DispatchRun, "AttemptDirs"], Awaitable[None]]
"""A step run in the empty workspace before the code files are laid over it."""


@dataclass(frozen=True)
class AttemptDirs:
    base: Path
    """Holds what is kept as artifacts too: ``output/`` and ``logs/``."""

    @classmethod
    def of(cls, workdir: Path, key: AttemptKey) -> AttemptDirs:
        return cls(workdir.resolve() / str(key.run_id) / str(key.attempt))

    @property
    def workspace(self) -> Path:
        return self.base / "workspace"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def fresh_workspace(self) -> Path:
        """An empty workspace (a previous try of this same attempt leaves nothing behind).

        The directories above it can be passed through, not listed (a local job reaches its
        workspace by path); the logs beside it are the executor's alone."""
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        for directory in (self.base.parent.parent, self.base.parent, self.base):
            directory.mkdir(mode=0o711, exist_ok=True)
            directory.chmod(0o711)
        self.workspace.mkdir()
        self.logs.mkdir(mode=0o700, exist_ok=True)
        return self.workspace

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        # The run's directory goes too once its last attempt directory has.
        try:
            self.base.parent.rmdir()
        except OSError:
            pass


def checkout_step(settings: CheckoutSettings, *, shares_workspace: bool) -> PrepareWorkspace:
    """The step before the code files are laid: the job's repository, when it names one."""

    async def prepare(command: DispatchRun, dirs: AttemptDirs) -> None:
        repo = command.job.repo
        if repo is None:
            return
        if not shares_workspace:
            raise LaunchFailed(
                FailureReason.checkout,
                "this executor cannot give a job a checked-out repository (its backend ships "
                "only the code files); route job types with a repo to executor-docker",
            )
        try:
            done = await check_out(repo, dirs.workspace, settings=settings)
        except CheckoutFailed as exc:
            raise LaunchFailed(FailureReason.checkout, f"checkout failed: {exc}") from exc
        log.info("repository checked out", extra={"commit": done.commit, "ref": repo.ref})

    return prepare


def lay_code_files(command: DispatchRun, workspace: Path) -> None:
    """Write the code files at their relative paths (over a checked-out repository)."""
    root = workspace.resolve()
    for file in command.job.code.files:
        target = (root / file.path).resolve()
        # Contracts already refuse '..' and absolute paths; this is the last line of defence,
        # also against a checked-out repository whose symlink points outside the workspace.
        if not target.is_relative_to(root):
            raise ValueError(f"code file path escapes the workspace: {file.path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(file.content)


def job_environment(command: DispatchRun, secrets: dict[str, str]) -> dict[str, str]:
    """The job's whole environment: nothing of the executor's own reaches it."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/workspace",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "CONTROLROOM_RUN_ID": str(command.run_id),
        "CONTROLROOM_ATTEMPT": str(command.attempt),
        "CONTROLROOM_JOB_TYPE": command.job.job_type,
    }
    for key, value in command.job.spec.inputs.items():
        name = "CONTROLROOM_INPUT_" + "".join(c if c.isalnum() else "_" for c in key).upper()
        env[name] = value
    env.update(secrets)
    return env


class NoCommand(Exception):
    """The routing matrix has no command for the entrypoint's extension."""


def job_command(command: DispatchRun, profile: ExecutionProfile) -> list[str]:
    entrypoint = command.job.code.entrypoint_path()
    argv = profile.command_for(entrypoint)
    if argv is None:
        known = ", ".join(sorted(profile.commands)) or "none"
        raise NoCommand(
            f"entrypoint {entrypoint!r}: the routing matrix runs only {known} files for "
            f"job type {command.job.job_type!r}"
        )
    return argv
