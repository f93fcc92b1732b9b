"""One attempt's cgroup v2: every process the job starts stays in it (a job cannot move itself
out), and ``cgroup.kill`` kills them all at once.

Attempts get ``<parent>/controlroom-<executor id>/<attempt name>``, the parent being the
executor's own cgroup by default (``/sys/fs/cgroup/unified/...`` in the hybrid layout of
these machines, ``/sys/fs/cgroup/...`` with cgroup v2 alone). No controller is enabled: the
cgroup is only used to find and kill processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection
from pathlib import Path

from controlroom_executor.process_tree import signal_if


class CgroupTree:
    """One attempt's cgroup v2 directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._relative = _cgroup_relative(path)

    @classmethod
    def create(cls, path: Path) -> CgroupTree:
        """Make the cgroup; one of the same name (a previous try of this attempt, by an
        executor that died) is emptied first."""
        path.parent.mkdir(exist_ok=True)
        tree = cls(path)
        if path.exists():
            tree.kill()
        path.mkdir(exist_ok=True)
        return tree

    def open_procs(self) -> int:
        """A descriptor on ``cgroup.procs``: the job's first process writes itself into it."""
        return os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def pids(self) -> set[int]:
        try:
            return {int(p) for p in (self.path / "cgroup.procs").read_text().split()}
        except FileNotFoundError:
            return set()

    def alive(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False
        return "populated 1" in events

    def signal(self, sig: int, *, spare: Collection[int] = ()) -> None:
        for pid in self.pids() - set(spare):
            signal_if(pid, sig, self._holds)

    def kill(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():  # Linux >= 5.14
            with contextlib.suppress(FileNotFoundError):
                kill_file.write_text("1")
        else:
            self.signal(signal.SIGKILL)

    def zombies(self) -> set[int]:
        return set()  # a process leaves its cgroup when it exits

    def remove(self) -> bool:
        """Remove the (empty) cgroup; False while something still runs in it. The executor's
        directory above it goes with its last attempt's."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            return False
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
        return True

    def _holds(self, pid: int) -> bool:
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return False
        return f"0::{self._relative}" in lines


def _cgroup_relative(path: Path) -> str:
    """``path`` as ``/proc/<pid>/cgroup`` names it: relative to the cgroup2 mount."""
    mount = cgroup2_mount()
    if mount is None or not path.is_relative_to(mount):
        return str(path)
    relative = path.relative_to(mount).as_posix()
    return "/" if relative == "." else f"/{relative}"


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` when it is the only one,
    ``/sys/fs/cgroup/unified`` in the hybrid layout), or None."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            return Path(before.split()[4])
    return None


def own_cgroup() -> Path | None:
    """This process's cgroup v2 directory, or None without a cgroup v2 hierarchy."""
    mount = cgroup2_mount()
    if mount is None:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            path = mount / line[3:].lstrip("/")
            return path if (path / "cgroup.procs").exists() else None
    return None
