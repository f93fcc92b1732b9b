"""Every process of one local attempt, found in ``/proc`` whatever the job did to hide them.

The attempt's own cgroup v2 (:mod:`controlroom_executor.cgroup_tree`) is the better way; this
is the fallback when no cgroup can be made (:class:`TrackedTree`). When the executor is root,
each attempt's processes carry a supplementary *tag group* of their own, which no
unprivileged process can drop: that finds even a ``setsid`` escapee whose parent has died.
Otherwise: the attempt's session and everything descending from it, plus the orphans
re-parented to the executor (a child subreaper) that started during the attempt; with several
attempts at once, an orphan that left its session can then be taken for another attempt's
(this mode is for development machines only).

Signals go through a pidfd opened after the process was checked to be the attempt's, so a
recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from collections.abc import Callable, Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start_ticks: int
    uid: int
    groups: frozenset[int]

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_proc(pid: int, *, ids: bool = True) -> ProcInfo | None:
    """``/proc/<pid>``'s ids and state, or None once it is gone. Without ``ids``, only
    ``stat`` is read (uid -1, no groups): a third of the cost."""
    try:
        raw = _read(f"/proc/{pid}/stat")
        status = _read(f"/proc/{pid}/status").decode() if ids else ""
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields start after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    uid = -1
    groups: frozenset[int] = frozenset()
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("Groups:"):
            groups = frozenset(int(g) for g in line.split()[1:])
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        state=fields[0].decode(),
        start_ticks=int(fields[19]),
        uid=uid,
        groups=groups,
    )


def _read(path: str) -> bytes:
    # Plain os calls: a scan of /proc reads hundreds of these small files.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def all_processes(*, ids: bool = True) -> list[ProcInfo]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and (info := read_proc(int(name), ids=ids)) is not None:
            found.append(info)
    return found


def signal_if(pid: int, sig: int, still_ours: Callable[[int], bool]) -> None:
    """Send ``sig`` to ``pid`` if, once a pidfd pins it, it is still the attempt's process."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already
        return
    try:
        if still_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


def reap(pids: Collection[int]) -> None:
    """Collect the exit status of those ``pids`` that are dead children of this process
    (orphans re-parented to the subreaper), so that they do not stay zombies."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def reap_orphans(uid: int) -> None:
    """Reap the dead children of this process (a child subreaper) that ran as ``uid``: the
    orphans of jobs. An unreaped zombie still counts against its uid's RLIMIT_NPROC: it would
    take processes from the next attempts. A child this process holds a pidfd on is a job's
    first process, which its own watcher reaps: it is left alone."""
    try:
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return  # no dead child at all: no need to look through /proc
    except ChildProcessError:
        return
    dead = [pid for pid in own_children() if (p := read_proc(pid, ids=False)) and p.zombie]
    if not dead:
        return
    keep = _pidfd_targets()
    reap([pid for pid in dead if pid not in keep and (p := read_proc(pid)) and p.uid == uid])


def own_children() -> set[int]:
    """This process's children, from each of its threads' ``children`` list (a job forked on
    a spawner thread is that thread's child, an orphan is re-parented to one of them): no walk
    through all of ``/proc``, unless the kernel offers no such list."""
    children: set[int] = set()
    listed_any = False
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                children.update(
                    int(pid) for pid in _read(f"/proc/self/task/{task}/children").split()
                )
                listed_any = True
    if not listed_any:  # CONFIG_PROC_CHILDREN off
        me = os.getpid()
        children = {p.pid for p in all_processes(ids=False) if p.ppid == me}
    return children


def _pidfd_targets() -> set[int]:
    """The processes this process holds a pidfd on (``/proc/self/fdinfo`` names them)."""
    pids = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:[pidfd]":
                continue
            for line in _read(f"/proc/self/fdinfo/{fd}").decode().splitlines():
                if line.startswith("Pid:"):
                    pids.add(int(line.split()[1]))
        except OSError:
            continue
    return pids


class TrackedTree:
    """One attempt's processes found in ``/proc`` (see the module's docstring)."""

    def __init__(
        self,
        *,
        uid: int,
        tag_gid: int | None,
        other_roots: Callable[[], Collection[int]],
    ) -> None:
        self.uid = uid
        self.tag_gid = tag_gid
        self._other_roots = other_roots
        self._root: ProcInfo | None = None
        self._me = os.getpid()
        self._my_sid = os.getsid(0)

    def attach(self, pid: int) -> None:
        """The attempt's first process (a session leader: ``start_new_session``)."""
        self._root = read_proc(pid)

    def members(self) -> dict[int, ProcInfo]:
        procs = {p.pid: p for p in all_processes()}
        if self.tag_gid is not None:
            return {pid: p for pid, p in procs.items() if self.tag_gid in p.groups}
        root = self._root
        if root is None:
            return {}
        others = set(self._other_roots())
        found = {
            pid
            for pid, p in procs.items()
            if (pid == root.pid and p.start_ticks == root.start_ticks)
            or p.sid == root.sid
            or (
                p.ppid == self._me  # an orphan re-parented to the subreaper
                and p.uid == self.uid
                and pid not in others
                and p.sid not in others
                and p.sid != self._my_sid
                and p.start_ticks >= root.start_ticks
            )
        }
        grew = True
        while grew:  # and their descendants, whatever session they made
            more = {pid for pid, p in procs.items() if p.ppid in found} - found
            found |= more
            grew = bool(more)
        return {pid: procs[pid] for pid in found}

    def pids(self) -> set[int]:
        return {pid for pid, p in self.members().items() if not p.zombie}

    def zombies(self) -> set[int]:
        root = self._root.pid if self._root is not None else None
        # The first process is the event loop's to reap (it waits for it).
        return {
            pid
            for pid, p in self.members().items()
            if p.zombie and p.ppid == self._me and pid != root
        }

    def alive(self) -> bool:
        return bool(self.pids())

    def signal(self, sig: int, *, spare: Collection[int] = ()) -> None:
        for pid, info in self.members().items():
            if pid not in spare and not info.zombie:
                signal_if(pid, sig, functools.partial(_started_at, start_ticks=info.start_ticks))

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def remove(self) -> bool:
        return not self.alive()


def _started_at(pid: int, start_ticks: int) -> bool:
    info = read_proc(pid)
    return info is not None and info.start_ticks == start_ticks and not info.zombie
