"""Local-process backend: the fallback when no container engine exists.

A job runs ``spec.command`` in its workspace with ``spec.env`` as its whole environment, and:

- as a dedicated unprivileged user when the executor is root (:func:`ensure_job_user`), else
  as the executor's own user (said in a warning); its workspace is handed to that user, 0700;
- under rlimits: CPU time, address space, file size, open files, no core, and processes
  (RLIMIT_NPROC, only with a dedicated uid: it counts every process of the uid);
- inside bubblewrap when ``bwrap`` works here (see :mod:`controlroom_executor.bwrap`); without
  it the job sees the host's filesystem with its uid's permissions (the executor's data
  directories must be closed to it: :func:`restrict_directories`) and, when the executor is
  root, an empty network namespace of its own unless its profile says ``egress``;
- in a cgroup v2 of its own when one can be made (:mod:`controlroom_executor.cgroup_tree`),
  else tracked in ``/proc`` (:mod:`controlroom_executor.process_tree`), so that stop and
  remove kill its whole tree. As root the executor is a child subreaper: orphans of jobs are
  re-parented to it and reaped at once (a zombie counts against the job uid's RLIMIT_NPROC).

Jobs are forked on a thread of the backend's (:mod:`controlroom_executor.job_process`): what
happens between fork and exec (joining the cgroup, dropping privileges) never blocks the
event loop.

It is still not a container: every view of such a run says ``sandboxed: false``. A local job
dies with its executor (bubblewrap's ``--die-with-parent``, the first process's parent-death
signal, and :meth:`close` at a clean stop), so :meth:`adopt` finds nothing to re-adopt; it
kills what a crashed predecessor left in its cgroups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import subprocess
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from controlroom_contracts.api import FailureReason
from controlroom_executor import pids_group
from controlroom_executor.backend import AttemptKey, AttemptSpec, LaunchFailed, RunningAttempt
from controlroom_executor.bwrap import settings
from controlroom_executor.cgroup_tree import CgroupTree
from controlroom_executor.child_setup import (
    ChildSetup,
    User,
    job_limits,
    namespaces_to_unshare,
)
from controlroom_executor.job_process import JobProcess
from controlroom_executor.job_user import (
    JobUserError,
    ensure_job_user,
    hand_workspace_to,
    restrict_directories,
    unreachable_ancestor,
)
from controlroom_executor.local_attempt import KILL_WAIT_SECONDS, LocalAttempt
from controlroom_executor.local_host import Host, detect_host
from controlroom_executor.pids_group import PidsGroup
from controlroom_executor.process_tree import TrackedTree, all_processes, reap_orphans

__all__ = ["LocalProcessBackend", "ensure_job_user", "restrict_directories"]

log = logging.getLogger(__name__)

TAG_GID_FIRST = 0x7E00_0000
"""Supplementary "tag" groups marking each attempt's processes when there is no cgroup: a
range of gids no real group of this host is expected to use. Each attempt draws one at random
that no process of the host carries (other executors on the host draw from the same range)."""
TAG_GIDS = 1 << 24
SPAWNER_THREADS = 4
"""Threads jobs are forked on (see ``LocalProcessBackend.__init__``)."""


class LocalProcessBackend:
    name = "local"
    sandboxed = False
    shares_workspace = True

    def __init__(
        self,
        *,
        job_user: tuple[int, int] | None = None,
        kill_grace_seconds: float = 5.0,
        use_bwrap: bool | None = None,
        use_cgroups: bool | None = None,
        cgroup_parent: Path | None = None,
        concurrent_jobs: int = 16,
    ) -> None:
        """``job_user``: the (uid, gid) jobs run as (:func:`ensure_job_user`); None runs them as
        the executor's own user, which root refuses. ``use_bwrap`` / ``use_cgroups``: None
        uses them when they work here, True fails every launch when they do not, False never
        uses them. ``cgroup_parent``: a writable cgroup v2 directory; by default the
        executor's own cgroup. ``concurrent_jobs``: how many jobs run at once at most, for the
        bound on the job user's processes where no pids group bounds each job."""
        self._as_root = os.geteuid() == 0
        if job_user is None:
            if self._as_root:
                raise JobUserError("as root, jobs need a user of their own (ensure_job_user())")
            log.warning("local jobs run as the executor's own user", extra={"uid": os.getuid()})
            job_user = (os.getuid(), os.getgid())
        if self._as_root and 0 in job_user:
            raise JobUserError("jobs must not run as root")
        if not self._as_root and job_user != (os.getuid(), os.getgid()):
            raise JobUserError("only root can run jobs as another user")
        self._uid, self._gid = job_user
        self._grace = kill_grace_seconds
        self._use_bwrap = use_bwrap
        self._use_cgroups = use_cgroups
        self._cgroup_parent = cgroup_parent
        self._concurrent_jobs = concurrent_jobs
        self._pids_groups: dict[AttemptKey, PidsGroup] = {}
        self._host: Host | None = None
        self._detecting = asyncio.Lock()
        self._live: dict[AttemptKey, LocalAttempt] = {}
        self._tags: set[int] = set()
        self._spawning = 0
        # Jobs are forked here, off the event loop; each dies with the thread that forked it
        # (see job_process), and these threads live as long as the backend. Several, because a
        # fork waits for the child's exec and joining a cgroup can wait for an RCU grace period:
        # one thread capped the backend at a few dozen starts a second.
        self._spawner = ThreadPoolExecutor(
            max_workers=SPAWNER_THREADS, thread_name_prefix="local-job-spawner"
        )

    async def launch(self, spec: AttemptSpec) -> RunningAttempt:
        host = await self._detect()
        if spec.key in self._live:
            raise LaunchFailed(FailureReason.executor_error, f"{spec.key.name()} already runs")
        if not spec.command:
            raise LaunchFailed(FailureReason.executor_error, "empty command")
        try:
            if self._as_root:
                await asyncio.to_thread(hand_workspace_to, spec.workspace, self._uid, self._gid)
            blocked = (
                None if host.bwrap else unreachable_ancestor(spec.workspace, self._uid, self._gid)
            )
        except OSError as exc:
            raise LaunchFailed(FailureReason.executor_error, f"workspace: {exc}") from exc
        if blocked is not None:
            raise LaunchFailed(
                FailureReason.executor_error,
                f"the job user cannot reach its workspace: {blocked} is not traversable "
                "(make it 0711: restrict_directories(traversable=...))",
            )
        tree, tag = self._new_tree(host, spec)
        pids = self._new_pids_group(host, spec)
        self._spawning += 1
        try:
            process = await self._spawn(host, spec, tree, tag, pids)
        except BaseException:
            self._release(tag)
            if isinstance(tree, CgroupTree):
                tree.remove()
            if pids is not None:
                pids.remove()
            raise
        finally:
            self._spawning -= 1
        if isinstance(tree, TrackedTree):
            tree.attach(process.pid)
        attempt = LocalAttempt(
            spec.key,
            process,
            tree,
            workspace=spec.workspace,
            in_bwrap=host.bwrap is not None,
            output_owner=self._uid if self._as_root else None,
            grace_seconds=self._grace,
            reap_orphans=self._reap_orphans,
            forget=lambda a: self._forget(a, tag),
        )
        self._live[spec.key] = attempt
        if pids is not None:
            self._pids_groups[spec.key] = pids
        log.info(
            "local job started",
            extra={
                "run_id": str(spec.key.run_id),
                "attempt": spec.key.attempt,
                "pid": attempt.pid,
                "bwrap": host.bwrap is not None,
                "cgroup": isinstance(tree, CgroupTree),
            },
        )
        return attempt

    async def adopt(self, executor_id: str) -> dict[AttemptKey, RunningAttempt]:
        """Nothing: a local job does not outlive its executor. What a crashed predecessor left
        in its cgroups (children of a killed job's first process) is killed here."""
        host = await self._detect()
        if host.pids is not None:
            pids_group.sweep(host.pids / _cgroup_dir(executor_id))
        if host.cgroups is not None:
            base = host.cgroups / _cgroup_dir(executor_id)
            with contextlib.suppress(FileNotFoundError):
                for path in base.iterdir():
                    if path.is_dir() and path.name not in {k.name() for k in self._live}:
                        await _discard(CgroupTree(path))
        return {}

    async def close(self) -> None:
        """Stop and remove every attempt still here (the executor is stopping)."""
        attempts = list(self._live.values())
        await asyncio.gather(*(a.remove() for a in attempts), return_exceptions=True)
        self._spawner.shutdown(wait=False)

    async def _spawn(
        self,
        host: Host,
        spec: AttemptSpec,
        tree: CgroupTree | TrackedTree,
        tag: int | None,
        pids: PidsGroup | None,
    ) -> JobProcess:
        fds: list[int] = []
        pass_fds: tuple[int, ...] = ()
        try:
            if isinstance(tree, CgroupTree):
                fds.append(tree.open_procs())
            if pids is not None:
                fds.append(pids.open_procs())
            cgroup_fds = tuple(fds)
            # Without a pids group of its own, a job is bounded with every other job of the
            # shared job user (RLIMIT_NPROC counts per user), room enough for all at once.
            shared_bound = spec.profile.pids * self._concurrent_jobs
            setup = ChildSetup(
                limits=job_limits(
                    spec.profile,
                    spec.timeout_seconds,
                    user_processes=shared_bound if self._as_root and pids is None else None,
                ),
                user=User(self._uid, self._gid, [tag] if tag is not None else [])
                if self._as_root
                else None,
                cgroup_procs_fds=cgroup_fds,
                unshare_flags=namespaces_to_unshare(
                    switching_user=self._as_root,
                    sandboxed=host.bwrap is not None,
                    network=spec.profile.network,
                ),
            )
            if host.bwrap is None:
                argv, env, pass_fds = list(spec.command), _outside_a_sandbox(spec), ()
            else:
                workspace_fd = os.open(spec.workspace, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                fds.append(workspace_fd)
                settings_fd = os.memfd_create("bwrap-settings", os.MFD_CLOEXEC)
                fds.append(settings_fd)
                os.write(settings_fd, settings(spec.env))
                os.lseek(settings_fd, 0, os.SEEK_SET)
                argv = host.bwrap.argv(
                    uid=self._uid,
                    gid=self._gid,
                    network=spec.profile.network,
                    tmp_bytes=int(spec.profile.tmp_bytes),
                    workspace_fd=workspace_fd,
                    settings_fd=settings_fd,
                    command=spec.command,
                )
                env, pass_fds = {}, (workspace_fd, settings_fd)  # bwrap itself gets no env
            process = await JobProcess.start(
                self._spawner,
                argv,
                cwd=spec.workspace,
                env=env,
                pass_fds=pass_fds,
                preexec_fn=setup,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise LaunchFailed(
                FailureReason.executor_error, f"could not start {spec.command[0]!r}: {exc}"
            ) from exc
        finally:
            for fd in fds:
                os.close(fd)
        return process

    def _new_tree(
        self, host: Host, spec: AttemptSpec
    ) -> tuple[CgroupTree | TrackedTree, int | None]:
        if host.cgroups is not None:
            path = host.cgroups / _cgroup_dir(spec.executor_id) / spec.key.name()
            try:
                return CgroupTree.create(path), None
            except OSError as exc:
                raise LaunchFailed(FailureReason.executor_error, f"cgroup {path}: {exc}") from exc
        tag = self._take_tag() if self._as_root else None
        tree = TrackedTree(uid=self._uid, tag_gid=tag, other_roots=self._roots)
        return tree, tag

    def _new_pids_group(self, host: Host, spec: AttemptSpec) -> PidsGroup | None:
        if host.pids is None:
            return None
        path = host.pids / _cgroup_dir(spec.executor_id) / spec.key.name()
        try:
            return PidsGroup.create(path, spec.profile.pids)
        except OSError as exc:
            raise LaunchFailed(FailureReason.executor_error, f"pids group {path}: {exc}") from exc

    def _reap_orphans(self) -> None:
        """As root, every orphan of every job is re-parented to the executor (a child
        subreaper): reap those that died. Not while a job is being started (its first process
        is not yet pinned by a pidfd)."""
        if self._as_root and not self._spawning:
            reap_orphans(self._uid)

    def _roots(self) -> Collection[int]:
        return {a.pid for a in self._live.values()}

    def _take_tag(self) -> int:
        tags = range(TAG_GID_FIRST, TAG_GID_FIRST + TAG_GIDS)
        in_use = {g for p in all_processes() for g in p.groups if g in tags} | self._tags
        for _ in range(100):
            gid = TAG_GID_FIRST + secrets.randbelow(TAG_GIDS)
            if gid not in in_use:
                self._tags.add(gid)
                return gid
        raise LaunchFailed(FailureReason.executor_error, "no free tag group")

    def _release(self, tag: int | None) -> None:
        if tag is not None:
            self._tags.discard(tag)

    def _forget(self, attempt: LocalAttempt, tag: int | None) -> None:
        if self._live.get(attempt.key) is attempt:
            del self._live[attempt.key]
            pids = self._pids_groups.pop(attempt.key, None)
            # Its processes are gone (the attempt's tree was killed); one still exiting keeps
            # the group a moment, which the next adopt() sweeps.
            if pids is not None and not pids.remove():
                log.info("pids group busy; left for the next sweep", extra={"path": str(pids.path)})
            elif pids is not None:
                with contextlib.suppress(OSError):  # the executor's own, once it is empty
                    pids.path.parent.rmdir()
        self._release(tag)

    async def _detect(self) -> Host:
        async with self._detecting:
            if self._host is None:
                self._host = await asyncio.to_thread(
                    detect_host,
                    job_user=User(self._uid, self._gid) if self._as_root else None,
                    use_bwrap=self._use_bwrap,
                    use_cgroups=self._use_cgroups,
                    cgroup_parent=self._cgroup_parent,
                )
            return self._host


def _outside_a_sandbox(spec: AttemptSpec) -> dict[str, str]:
    """Without bubblewrap there is no ``/workspace``: the job's home is its workspace's real
    path (its ``/tmp`` is the host's, shared)."""
    env = dict(spec.env)
    for name in ("HOME", "PWD"):
        if env.get(name) == "/workspace":
            env[name] = str(spec.workspace)
    return env


def _cgroup_dir(executor_id: str) -> str:
    return "controlroom-" + re.sub(r"[^A-Za-z0-9_.-]", "_", executor_id)


async def _discard(tree: CgroupTree) -> None:
    tree.kill()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_WAIT_SECONDS
    while not tree.remove() and loop.time() < deadline:
        await asyncio.sleep(0.05)
