"""One attempt's group in the cgroup v1 ``pids`` hierarchy: at most ``pids.max`` processes.

Why not RLIMIT_NPROC: it counts every process of the *user*, and local jobs share one job
user, so with enough jobs at once every job's fork (and bubblewrap's namespaces) failed with
EAGAIN, whatever each job did (36 of 100 concurrent runs failed so). Why not the attempt's cgroup
v2: the hybrid layout of these machines enables no controller there, and a v2 parent holding
the executor itself cannot hand controllers down. The v1 ``pids`` hierarchy counts per group.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PIDS_ROOT = Path("/sys/fs/cgroup/pids")


class PidsGroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, limit: int) -> PidsGroup:
        path.parent.mkdir(exist_ok=True)
        path.mkdir(exist_ok=True)
        (path / "pids.max").write_text(str(limit))
        return cls(path)

    def open_procs(self) -> int:
        """A descriptor on ``cgroup.procs``: the job's first process writes itself into it."""
        return os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def remove(self) -> bool:
        """Remove the group once its processes are gone; False while some remain."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def working_pids_root(root: Path = PIDS_ROOT) -> Path | None:
    """The ``pids`` hierarchy, if this process may make groups in it (root, hybrid layout)."""
    probe = root / f"controlroom-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        (probe / "pids.max").write_text("1")
    except OSError:
        with contextlib.suppress(OSError):
            probe.rmdir()
        return None
    probe.rmdir()
    return root


def sweep(directory: Path) -> None:
    """Remove the empty groups a crashed predecessor left under ``directory``."""
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            if path.is_dir():
                PidsGroup(path).remove()
