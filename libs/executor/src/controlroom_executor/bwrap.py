"""Running a local job inside bubblewrap (Debian package ``bubblewrap``), when it is installed.

The job gets its own user, pid, mount, IPC, UTS and cgroup namespaces, and its own network
namespace unless its profile says ``egress`` (it then shares the host's network, loopback
included: the executor's own local services are reachable from such a job). It sees
read-only ``/usr`` (and the ``/bin``, ``/lib``... that lead there), a few files of ``/etc``, a
fresh ``/proc`` of its own pid namespace, a minimal ``/dev``, a size-limited ``/tmp`` and its
workspace read-write at ``/workspace``: nothing of the executor's data directory, of other
attempts' workspaces or of the executor's processes.

bubblewrap itself runs as the job user (it needs no privileges: it makes a user namespace),
so whatever escaped the namespaces would still be that unprivileged uid.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controlroom_contracts.routing import Network

ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
)
ETC_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
)
VERSION_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Bubblewrap:
    path: str
    version: tuple[int, ...]

    @classmethod
    def find(cls) -> Bubblewrap | None:
        """bubblewrap on PATH, or None."""
        path = shutil.which("bwrap")
        if path is None:
            return None
        try:
            out = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                timeout=VERSION_TIMEOUT_SECONDS,
                check=False,
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
        version = tuple(int(n) for n in found.groups(default="0")) if found else (0,)
        return cls(path, version)

    def argv(
        self,
        *,
        uid: int,
        gid: int,
        network: Network,
        tmp_bytes: int,
        workspace_fd: int | None,
        settings_fd: int | None,
        command: Sequence[str],
    ) -> list[str]:
        """The bwrap command line that runs ``command`` in ``/workspace``.

        ``workspace_fd`` is an open descriptor of the workspace (``--bind-fd``: the job user
        need not be able to reach it by path); ``settings_fd`` holds the environment options
        (see :func:`settings`), kept off the command line that every local user can read."""
        argv = [self.path, "--unshare-all"]
        if network == "egress":
            argv.append("--share-net")
        if self.version >= (0, 8):
            argv += ["--unshare-user", "--disable-userns"]  # no nested namespaces inside
        argv += [
            "--die-with-parent",
            "--new-session",
            "--uid",
            str(uid),
            "--gid",
            str(gid),
            "--hostname",
            "controlroom-job",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for path in ROOT_LINKS:
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        etc = ETC_FILES + (ETC_NETWORK_FILES if network == "egress" else ())
        for path in etc:
            argv += ["--ro-bind-try", path, path]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]
        if workspace_fd is None:
            argv += ["--dir", "/workspace"]
        else:
            argv += ["--bind-fd", str(workspace_fd), "/workspace"]
        argv += ["--chdir", "/workspace"]
        if settings_fd is not None:
            argv += ["--args", str(settings_fd)]
        return [*argv, "--", *command]


def settings(env: Mapping[str, str]) -> bytes:
    """The job's environment as bwrap options, NUL-separated for ``--args``: the job gets
    exactly ``env`` (bwrap adds ``PWD``)."""
    args = ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return b"".join(arg.encode() + b"\0" for arg in args)
