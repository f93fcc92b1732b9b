"""The Docker Engine API body that creates one attempt's container, and what adoption reads back.

Everything that confines a job is here, in one place a reviewer can read: no network unless the
profile asks for egress, a read-only root, no capabilities, no new privileges, a non-root user,
cgroup limits on memory (no swap), CPU and processes, a size-capped ``/tmp`` and rlimits on open
files and on the size of one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlroom_executor.backend import AttemptSpec

WORKSPACE = "/workspace"
JOB_UID = 65534
"""``nobody``: the job never runs as root, inside or outside the container."""
JOB_GID = 65534


@dataclass(frozen=True)
class Rlimits:
    """Per-process limits beside the cgroup ones."""

    open_files: int = 4096
    processes: int = 16384
    """RLIMIT_NPROC counts every process of the job's uid on the host, across containers, so it
    is no per-job limit (``PidsLimit`` is). It is set only because Podman, once any ulimit is
    given, fills the unset ones with 1048576, which fails where the engine may not raise its
    hard limit (no CAP_SYS_RESOURCE); it must stay at or below the engine's own hard limit."""


def container_config(
    spec: AttemptSpec, *, log_cap_bytes: int | None, rlimits: Rlimits
) -> dict[str, Any]:
    """The ``POST /containers/create`` body for ``spec`` (the name goes in the query)."""
    profile = spec.profile
    host_config: dict[str, Any] = {
        "Memory": profile.memory_bytes,
        "MemorySwap": profile.memory_bytes,  # equal to Memory: no swap at all
        "NanoCpus": int(profile.cpus * 1_000_000_000),
        "PidsLimit": profile.pids,
        "ReadonlyRootfs": True,
        "Binds": [f"{spec.workspace}:{WORKSPACE}:rw"],
        "Tmpfs": {"/tmp": f"rw,noexec,nosuid,size={profile.tmp_bytes}"},
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "Privileged": False,
        # A tiny init (catatonit under Podman, tini under Docker) as pid 1: it forwards SIGTERM
        # to the job (pid 1 of a namespace ignores signals it has no handler for, so a plain
        # `sleep` would only die at SIGKILL) and reaps orphans. When the job's own process
        # exits, the init exits and the kernel kills whatever the job left behind.
        "Init": True,
        "Ulimits": [
            {"Name": "nofile", "Soft": rlimits.open_files, "Hard": rlimits.open_files},
            {"Name": "nproc", "Soft": rlimits.processes, "Hard": rlimits.processes},
            # No single file larger than the whole workspace may be (SIGXFSZ past it).
            {"Name": "fsize", "Soft": profile.workspace_bytes, "Hard": profile.workspace_bytes},
        ],
        "RestartPolicy": {"Name": "no"},
    }
    if profile.network == "none":
        host_config["NetworkMode"] = "none"
    # egress: no NetworkMode, so the engine's default network (Docker's bridge, Podman's
    # bridge as root or slirp4netns rootless).
    if log_cap_bytes is not None:
        # The engine keeps its own copy of the output (the adopted attempt's replay); cap it.
        # Podman maps json-file to its k8s-file driver and honours max-size.
        host_config["LogConfig"] = {
            "Type": "json-file",
            "Config": {"max-size": str(log_cap_bytes), "max-file": "1"},
        }
    return {
        "Image": profile.image,
        "Cmd": list(spec.command),
        "WorkingDir": WORKSPACE,
        "Env": [f"{name}={value}" for name, value in spec.env.items()],
        "Labels": spec.labels(),
        "User": f"{JOB_UID}:{JOB_GID}",
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "OpenStdin": False,
        "Tty": False,
        "HostConfig": host_config,
    }


@dataclass(frozen=True)
class Confinement:
    """What an adopted attempt needs to know about its container, read back from inspect."""

    workspace: Path | None
    memory_bytes: int
    workspace_bytes: int | None


def confinement_of(inspected: dict[str, Any]) -> Confinement:
    """The workspace mount and the limits that :func:`container_config` set on a container."""
    workspace: Path | None = None
    for mount in inspected.get("Mounts") or []:
        if mount.get("Destination") == WORKSPACE and mount.get("Source"):
            workspace = Path(mount["Source"])
    host = inspected.get("HostConfig") or {}
    workspace_bytes: int | None = None
    for ulimit in host.get("Ulimits") or []:
        if ulimit.get("Name") in ("fsize", "RLIMIT_FSIZE"):
            workspace_bytes = int(ulimit.get("Hard") or 0) or None
    return Confinement(workspace, int(host.get("Memory") or 0), workspace_bytes)
