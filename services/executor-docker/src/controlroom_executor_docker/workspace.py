"""The attempt's workspace as the host sees it (the bind mount's source).

Everything under it was written by the job, so nothing here follows a symbolic link: a job may
leave ``output -> /etc`` behind. These functions block; callers run them in a thread.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from controlroom_executor_docker.container_config import JOB_GID, JOB_UID

OUTPUT = "output"
_BLOCK = 512


def hand_over(workspace: Path) -> None:
    """Give the workspace (the directory and everything in it) to the job's uid, mode 0700."""
    os.lchown(workspace, JOB_UID, JOB_GID)
    workspace.chmod(0o700)
    for parent, dirs, files in os.walk(workspace):
        for name in (*dirs, *files):
            os.lchown(os.path.join(parent, name), JOB_UID, JOB_GID)


def usage_bytes(workspace: Path) -> int:
    """Disk the tree uses (allocated blocks, each hard-linked file once, at least one block per
    entry so a flood of empty files counts too)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for parent, dirs, files in os.walk(workspace, onerror=lambda _: None):
        for name in (*dirs, *files):
            try:
                info = os.lstat(os.path.join(parent, name))
            except OSError:  # removed while we walk: the job is still running
                continue
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            total += max(info.st_blocks * _BLOCK, _BLOCK)
    return total


def copy_outputs(workspace: Path, into: Path) -> int:
    """Copy the regular files under ``workspace/output`` into ``into`` at the same relative
    paths; returns how many. Symbolic links, devices, FIFOs and sockets are skipped: ``fwalk``
    descends through open directory descriptors without following links (a link swapped in for
    ``output`` or any directory below is not entered) and each file is opened relative to its
    directory with ``O_NOFOLLOW``, then checked to be a regular file."""
    copied = 0
    workspace_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            # fwalk stats its top before walking: a job that wrote no output/ has nothing.
            os.stat(OUTPUT, dir_fd=workspace_fd, follow_symlinks=False)
        except FileNotFoundError:
            return 0
        for parent, _dirs, files, dir_fd in os.fwalk(
            OUTPUT, dir_fd=workspace_fd, follow_symlinks=False
        ):
            relative = Path(parent).relative_to(OUTPUT)
            for name in files:
                if _copy_one(dir_fd, name, into / relative / name):
                    copied += 1
    finally:
        os.close(workspace_fd)
    return copied


def _copy_one(dir_fd: int, name: str, target: Path) -> bool:
    try:
        # O_NONBLOCK: opening a FIFO the job left must not hang the executor.
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:  # a symbolic link (ELOOP), a socket, or gone
        return False
    with os.fdopen(source, "rb") as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    return True
