"""What a local job's first process does between fork and exec.

It runs as ``preexec_fn``, so it must stay trivial: only calls straight into the kernel (no
imports, no logging, no locks another thread of the executor could hold at fork time).
Everything it needs is resolved beforehand in the parent.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from controlroom_contracts.routing import ExecutionProfile

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
OPEN_FILES = 1024
"""RLIMIT_NOFILE of a job."""

Limit = tuple[int, tuple[int, int]]


def job_limits(
    profile: ExecutionProfile, timeout_seconds: int, *, user_processes: int | None
) -> list[Limit]:
    """The rlimits of a job: CPU seconds just past its timeout (SIGXCPU, then SIGKILL a second
    later), address space, largest file, open files, no core dumps and, given
    ``user_processes``, how many processes the job's user may have (RLIMIT_NPROC counts every
    process of the uid, every job of a shared job user alike: a bound for them all, used only
    where no pids group bounds each job)."""
    cpu = timeout_seconds + 1
    memory = int(profile.memory_bytes)
    file_size = int(profile.workspace_bytes)
    limits: list[Limit] = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (file_size, file_size)),
        (resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if user_processes is not None:
        limits.append((resource.RLIMIT_NPROC, (user_processes, user_processes)))
    return limits


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [
        ctypes.c_int,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    libc.prctl.restype = ctypes.c_int
    libc.unshare.argtypes = [ctypes.c_int]
    libc.unshare.restype = ctypes.c_int
    return libc


def become_child_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER): a job
    process that escapes its session with ``setsid`` and loses its parent is re-parented here
    instead of to init, so the executor still finds it."""
    if _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: Sequence[int] = ()
    """Supplementary groups: the attempt's tag group when processes are tracked without a
    cgroup (a process cannot leave a supplementary group without privileges)."""


class ChildSetup:
    """``preexec_fn`` of a job's first process. In order: join the attempt's cgroups, unshare
    the network and IPC namespaces, set the rlimits (all of which need the executor's
    privileges), drop to the job user, forbid gaining privileges (setuid binaries), and die
    with the executor."""

    def __init__(
        self,
        *,
        limits: Sequence[Limit],
        user: User | None,
        cgroup_procs_fds: Sequence[int] = (),
        unshare_flags: int = 0,
    ) -> None:
        self._limits = tuple(limits)
        self._user = user
        self._cgroup_fds = tuple(cgroup_procs_fds)
        self._unshare_flags = unshare_flags
        self._parent = os.getpid()
        libc = _libc()
        self._prctl = libc.prctl
        self._unshare = libc.unshare
        self._setrlimit = resource.setrlimit

    def __call__(self) -> None:
        for cgroup_fd in self._cgroup_fds:  # the attempt's cgroup, and its pids group
            os.write(cgroup_fd, b"0")  # "0": the writing process itself
        if self._unshare_flags and self._unshare(self._unshare_flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        for which, limit in self._limits:
            self._setrlimit(which, limit)
        if self._user is not None:
            os.setgroups(list(self._user.groups))
            os.setresgid(self._user.gid, self._user.gid, self._user.gid)
            os.setresuid(self._user.uid, self._user.uid, self._user.uid)
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        # After the uid change, which clears it.
        if self._prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != self._parent:  # the executor died before the line above
            os._exit(1)


def namespaces_to_unshare(*, switching_user: bool, sandboxed: bool, network: str) -> int:
    """Without bubblewrap, a job started by root still gets its own IPC namespace and, unless
    it may reach the network, an empty network namespace (no interface up, not even the
    host's loopback). Only root may unshare them before dropping to the job user."""
    if sandboxed or not switching_user:
        return 0
    flags = CLONE_NEWIPC
    if network != "egress":
        flags |= CLONE_NEWNET
    return flags
