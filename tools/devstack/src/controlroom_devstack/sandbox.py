"""Where the stack's jobs run: a container engine when there is one, else local processes.

``make up``, the end-to-end tests and ``make bench`` all decide the same way: Podman when it is
installed (its service started under the data directory), else a Docker daemon that answers,
else the local-process backend (unsandboxed; bubblewrap namespaces when ``bwrap`` exists).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from controlroom_devstack.engine import ContainerEngine, find_or_start_engine
from controlroom_devstack.images import Builder, ensure_images


@dataclass
class JobSandbox:
    engine: ContainerEngine | None
    env: dict[str, str] = field(default_factory=dict)
    """What executor-docker is given to use it."""

    def describe(self) -> str:
        if self.engine is not None:
            return f"containers through {self.engine.name}'s Docker API ({self.engine.url})"
        isolation = "in bubblewrap namespaces" if shutil.which("bwrap") else "without namespaces"
        return (
            "local processes (no container engine found: install podman for sandboxed jobs); "
            f"a dedicated unprivileged user, {isolation}, every run marked sandboxed: false"
        )

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()


def job_sandbox(data_dir: Path, *, containers: bool = True) -> JobSandbox:
    """Start (or find) the engine and build the job images it lacks; ``containers=False``
    chooses the local backend even where an engine exists."""
    engine = find_or_start_engine(data_dir / "engine") if containers else None
    if engine is None:
        return JobSandbox(None, {"CONTROLROOM_JOB_BACKEND": "local"})
    try:
        if engine.cli:
            ensure_images(Builder(engine.cli, engine.env))
    except BaseException:
        engine.stop()
        raise
    return JobSandbox(
        engine,
        {
            "CONTROLROOM_JOB_BACKEND": "docker",
            "CONTROLROOM_DOCKER_URL": engine.url,
            "CONTROLROOM_DOCKER_ENGINE": engine.name,
        },
    )
