"""The unprivileged user local jobs run as, and the file modes that keep it in its workspace.

A local job (no container) sees the host's filesystem with its uid's permissions, so the
executor's own directories must be closed to that uid: the helpers here make the job user
exist, hand each workspace to it, and tighten the modes of the executor's data directories.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

USERADD_TIMEOUT_SECONDS = 30.0
COPY_CHUNK_BYTES = 1 << 20


class JobUserError(Exception):
    """The job user could not be created or is unfit to run jobs (root, say)."""


def ensure_job_user(name: str = "controlroom-job") -> tuple[int, int]:
    """The (uid, gid) jobs run as.

    As root: the system user ``name``, created when missing with no login shell, no home and
    its own group. Not as root: the current user's ids (jobs then run as the executor's own
    user, which is said in a warning)."""
    if os.geteuid() != 0:
        log.warning(
            "not running as root: local jobs run as the executor's own user",
            extra={"uid": os.getuid()},
        )
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_user(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise JobUserError(f"job user {name!r} has uid or gid 0")
    return entry.pw_uid, entry.pw_gid


def _create_user(name: str) -> pwd.struct_passwd:
    shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    argv = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        shell,
        name,
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=USERADD_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobUserError(f"useradd {name}: {exc}") from exc
    try:
        # Another executor on this host may have created it meanwhile (useradd then fails).
        entry = pwd.getpwnam(name)
    except KeyError:
        raise JobUserError(f"useradd {name} failed: {done.stderr.strip()}") from None
    log.info("job user created", extra={"user": name, "uid": entry.pw_uid})
    return entry


def hand_workspace_to(workspace: Path, uid: int, gid: int) -> None:
    """Make ``workspace`` and everything under it the job user's, the top directory 0700.

    Symlinks are never followed: a checked-out repository may hold one that points at a host
    file, which must not become the job user's."""
    top = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for _dirpath, dirnames, filenames, dirfd in os.fwalk(dir_fd=top, follow_symlinks=False):
            for name in (*dirnames, *filenames):
                os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
        os.fchown(top, uid, gid)
        os.fchmod(top, 0o700)
    finally:
        os.close(top)


def restrict_directories(private: Iterable[Path] = (), *, traversable: Iterable[Path] = ()) -> None:
    """Close the executor's directories to other users (the job user above all).

    ``private`` directories (logs, the object store, the database) become 0700. A
    ``traversable`` directory (the one workspaces live under) becomes 0711: a job that is not
    in a sandbox needs to pass through it to reach its own workspace by path, but cannot list
    it, and every workspace in it is 0700. Only the named directories change: call this before
    anything is created under them, with the process umask at 077, so that what is created
    later is private too."""
    for path in private:
        os.chmod(path, 0o700)
    for path in traversable:
        os.chmod(path, 0o711)


def unreachable_ancestor(workspace: Path, uid: int, gid: int) -> Path | None:
    """The first directory above ``workspace`` that ``uid``/``gid`` may not pass through."""
    for parent in reversed(workspace.resolve().parents):
        mode = parent.stat()
        if mode.st_uid == uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == gid:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


def copy_output_files(workspace: Path, into: Path, *, owner: int | None) -> int:
    """Copy the regular files under ``workspace/output`` into ``into``; how many were copied.

    Nothing is reached through a symlink: every directory and file is opened relative to its
    directory with ``O_NOFOLLOW``, so a job (or another job of the same uid) that swaps a
    directory for a symlink meanwhile gains nothing. With ``owner``, a file that uid does not
    own (a hard link to someone else's file) is skipped."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(workspace, flags)
    except FileNotFoundError:
        return 0
    copied = 0
    try:
        try:
            output = os.open("output", flags, dir_fd=top)
        except OSError:  # missing, not a directory, or a symlink
            return 0
        try:
            for dirpath, _dirs, files, dirfd in os.fwalk(dir_fd=output, follow_symlinks=False):
                for name in files:
                    if _copy_one(name, dirfd, into / dirpath / name, owner):
                        copied += 1
        finally:
            os.close(output)
    finally:
        os.close(top)
    return copied


def _copy_one(name: str, dirfd: int, target: Path, owner: int | None) -> bool:
    try:
        # O_NONBLOCK: opening a FIFO the job left there must not hang.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:  # a symlink (ELOOP), or gone
        return False
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (owner is not None and info.st_uid != owner):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            shutil.copyfileobj(source, sink, COPY_CHUNK_BYTES)
    return True
