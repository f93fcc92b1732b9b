"""What this machine offers local jobs: a working bubblewrap, a writable cgroup v2."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import LaunchFailed
from controlroom_executor.bwrap import Bubblewrap
from controlroom_executor.cgroup_tree import own_cgroup
from controlroom_executor.child_setup import ChildSetup, User, become_child_subreaper
from controlroom_executor.pids_group import working_pids_root

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Host:
    bwrap: Bubblewrap | None
    cgroups: Path | None
    """The cgroup v2 under which attempts get cgroups of their own, or None."""
    pids: Path | None = None
    """The cgroup v1 ``pids`` hierarchy, where each attempt gets a group bounding its
    processes, or None (then RLIMIT_NPROC bounds all jobs of the job user together)."""


def detect_host(
    *,
    job_user: User | None,
    use_bwrap: bool | None,
    use_cgroups: bool | None,
    cgroup_parent: Path | None,
) -> Host:
    """What works here, tried for real. ``use_*``: None uses what works, True raises
    :class:`LaunchFailed` when it does not work, False does not try. ``job_user``: who jobs run
    as when the executor is root (None: the executor's own user).

    As root, or without bubblewrap and cgroups, this process becomes a child subreaper: the
    orphans of jobs are re-parented to it, to be found (tracked mode) and reaped promptly."""
    bwrap = _working_bwrap(job_user, required=use_bwrap) if use_bwrap is not False else None
    cgroups = (
        _working_cgroups(cgroup_parent, required=use_cgroups) if use_cgroups is not False else None
    )
    as_root = job_user is not None
    pids = working_pids_root() if as_root else None
    if bwrap is None:
        log.warning(
            "local jobs run without bubblewrap: they see the host's filesystem with the "
            "job user's permissions" + ("" if as_root else " and the host's network")
        )
    if cgroups is None:
        log.warning("no cgroup v2 for local jobs: their processes are tracked in /proc")
    if as_root or (cgroups is None and bwrap is None):
        become_child_subreaper()
    log.info(
        "local backend ready",
        extra={
            "bwrap": bwrap.path if bwrap else None,
            "cgroups": str(cgroups) if cgroups else None,
            "pids": str(pids) if pids else None,
            "job_uid": job_user.uid if job_user else os.getuid(),
        },
    )
    return Host(bwrap, cgroups, pids)


def _working_bwrap(job_user: User | None, *, required: bool | None) -> Bubblewrap | None:
    found = Bubblewrap.find()
    problem = "bwrap is not on PATH" if found is None else _probe(found, job_user)
    if problem is None:
        return found
    if required:
        raise LaunchFailed(FailureReason.executor_error, f"bubblewrap unusable: {problem}")
    if found is not None:
        log.warning("bubblewrap is installed but does not work here", extra={"error": problem})
    return None


def _probe(bwrap: Bubblewrap, job_user: User | None) -> str | None:
    """Run ``true`` in a sandbox as the job user: whether user namespaces work here."""
    argv = bwrap.argv(
        uid=job_user.uid if job_user else os.getuid(),
        gid=job_user.gid if job_user else os.getgid(),
        network="none",
        tmp_bytes=1 << 20,
        workspace_fd=None,
        settings_fd=None,
        command=["/usr/bin/true"],
    )
    try:
        done = subprocess.run(
            argv,
            env={},
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            preexec_fn=ChildSetup(limits=[], user=job_user),
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
    return None


def _working_cgroups(parent: Path | None, *, required: bool | None) -> Path | None:
    parent = parent or own_cgroup()
    problem = None
    if parent is None or not (parent / "cgroup.procs").exists():
        problem = f"no cgroup v2 at {parent}" if parent else "no cgroup v2 hierarchy"
    else:
        probe = parent / f"controlroom-probe-{os.getpid()}"
        try:
            probe.mkdir(exist_ok=True)
            probe.rmdir()
        except OSError as exc:
            problem = f"{parent}: {exc}"
    if problem is None:
        return parent
    if required:
        raise LaunchFailed(FailureReason.executor_error, f"cgroups unusable: {problem}")
    log.info("cgroup v2 unusable", extra={"error": problem})
    return None
