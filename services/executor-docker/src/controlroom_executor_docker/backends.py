"""The backend executor-docker runs attempts on: containers through the Docker Engine API
(Docker or Podman), or, for development without an engine, local processes."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from controlroom_executor.backend import ExecutionBackend
from controlroom_executor.job_user import ensure_job_user, unreachable_ancestor
from controlroom_executor.local_backend import LocalProcessBackend
from controlroom_executor_docker.docker_backend import DockerBackend
from controlroom_executor_docker.settings import ExecutorDockerSettings

log = logging.getLogger(__name__)


def build_backend(settings: ExecutorDockerSettings) -> ExecutionBackend:
    if settings.chosen_backend() == "docker":
        assert settings.docker_url is not None  # the settings refuse docker without a URL
        return DockerBackend(
            settings.docker_url,
            engine=settings.docker_engine,
            kill_grace_seconds=settings.kill_grace_seconds,
            log_cap_bytes=settings.log_cap_bytes * 2,
        )
    job_user = ensure_job_user(settings.job_user) if settings.job_user else None
    if job_user is not None:
        _open_the_way(settings.executor_workdir, *job_user)
    return LocalProcessBackend(
        job_user=job_user,
        kill_grace_seconds=settings.kill_grace_seconds,
        use_bwrap=settings.use_bwrap,
        concurrent_jobs=settings.executor_capacity,
    )


def _open_the_way(workdir: Path, uid: int, gid: int) -> None:
    """The job user must pass through the directories above its workspace (bubblewrap binds
    it as that user; without bubblewrap the job reaches it by path). Each directory in the way
    becomes traversable, never listable (o+x only); every workspace under it is 0700."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    while (blocked := unreachable_ancestor(workdir / "run", uid, gid)) is not None:
        mode = blocked.stat().st_mode
        blocked.chmod(mode | stat.S_IXOTH)
        log.warning(
            "a directory above the work directory made traversable for the job user",
            extra={"directory": str(blocked)},
        )
