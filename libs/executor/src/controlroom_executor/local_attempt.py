"""One local attempt: its process, its output pipes and its process tree."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import AttemptKey, Exit, Stream
from controlroom_executor.job_process import JobProcess
from controlroom_executor.job_user import copy_output_files
from controlroom_executor.process_tree import all_processes, reap

log = logging.getLogger(__name__)

EXIT_DRAIN_SECONDS = 5.0
"""How long ``output()`` waits for the pipes to close once the job's processes are gone (only
a descriptor handed outside the attempt could keep one open)."""
KILL_WAIT_SECONDS = 10.0
"""How long after SIGKILL the attempt's processes may take to be gone."""
POLL_SECONDS = 0.02


class Tree(Protocol):
    def signal(self, sig: int, *, spare: frozenset[int] = ...) -> None: ...
    def kill(self) -> None: ...
    def alive(self) -> bool: ...
    def zombies(self) -> set[int]: ...
    def remove(self) -> bool: ...


class LocalAttempt:
    """A :class:`~controlroom_executor.backend.RunningAttempt` of the local backend.

    Like a container's, an attempt ends with its first process: what that process leaves
    running is killed when it exits (bubblewrap does the same to its pid namespace), so the
    output pipes close and nothing outlives the attempt."""

    def __init__(
        self,
        key: AttemptKey,
        process: JobProcess,
        tree: Tree,
        *,
        workspace: Path,
        in_bwrap: bool,
        output_owner: int | None,
        grace_seconds: float,
        reap_orphans: Callable[[], None],
        forget: Callable[[LocalAttempt], None],
    ) -> None:
        self.key = key
        self.pid = process.pid
        self.handle = str(self.pid)
        self._process = process
        self._tree = tree
        self._workspace = workspace
        self._in_bwrap = in_bwrap
        self._output_owner = output_owner
        self._grace = grace_seconds
        self._reap_orphans = reap_orphans
        self._forget = forget
        self._removed = False
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{key.name()}-supervise")
        self._log = {"run_id": str(key.run_id), "attempt": key.attempt, "pid": self.pid}

    async def _supervise(self) -> Exit:
        try:
            await self._process.exited.wait()
            await self._end_tree()
            return exit_of(self._process.returncode, in_bwrap=self._in_bwrap)
        finally:
            self._process.changed.set()  # output() stops waiting for an exit that has come

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        loop = asyncio.get_running_loop()
        drain_until: float | None = None
        while True:
            chunk = self._process.take()
            if chunk is not None:
                yield chunk
                continue
            if not self._process.open:
                return
            if self._supervisor.done() and drain_until is None:
                drain_until = loop.time() + EXIT_DRAIN_SECONDS
            self._process.changed.clear()
            if drain_until is None:
                await self._process.changed.wait()
                continue
            try:
                async with asyncio.timeout_at(drain_until):
                    await self._process.changed.wait()
            except TimeoutError:
                log.warning("output still open after the attempt ended", extra=self._log)
                return

    async def wait(self) -> Exit:
        try:
            return await asyncio.shield(self._supervisor)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._supervisor.cancelled() and not (task and task.cancelling()):
                return Exit(None, FailureReason.executor_error, "removed before it ended")
            raise

    async def stop(self, grace_seconds: float) -> None:
        if self._supervisor.done() and not self._tree.alive():
            return
        # Inside bubblewrap, SIGTERM goes to the job, not to bwrap and its pid-1 reaper (which
        # would die at once and take the job down with SIGKILL, leaving it no grace).
        spare = self._sandbox_processes() if self._in_bwrap else frozenset()
        self._tree.signal(signal.SIGTERM, spare=spare)
        if not await _until(self._supervisor.done, grace_seconds):
            log.info("attempt did not end on SIGTERM: SIGKILL", extra=self._log)
        await self._kill()

    async def collect(self, into: Path) -> None:
        copied = await asyncio.to_thread(
            copy_output_files, self._workspace, into, owner=self._output_owner
        )
        log.debug("attempt outputs copied", extra={**self._log, "files": copied})

    async def remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        try:
            await self._kill()
            if not await _until(self._tree.remove, KILL_WAIT_SECONDS):
                log.error("attempt's process tree could not be removed", extra=self._log)
        finally:
            self._process.kill()  # in case the tree could not be killed
            self._process.close()
            self._supervisor.cancel()  # a no-op once it is done
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._forget(self)

    async def _kill(self) -> None:
        """SIGKILL everything of the attempt; returns once it is all gone (bounded)."""
        self._tree.kill()
        self._process.kill()
        gone = await _until(
            lambda: self._supervisor.done() and not self._tree.alive(), KILL_WAIT_SECONDS
        )
        if not gone:
            log.error("attempt's processes survive SIGKILL", extra=self._log)
        self._reap()

    async def _end_tree(self) -> None:
        """Once the first process has exited: kill what it left behind and reap orphans."""
        if self._tree.alive():
            self._tree.kill()
            if not await _until(lambda: not self._tree.alive(), KILL_WAIT_SECONDS):
                log.error("attempt's processes survive SIGKILL", extra=self._log)
        self._reap()

    def _reap(self) -> None:
        reap(self._tree.zombies())
        self._reap_orphans()

    def _sandbox_processes(self) -> frozenset[int]:
        """bwrap (the first process) and its child, the sandbox's pid 1."""
        children = {p.pid for p in all_processes(ids=False) if p.ppid == self.pid}
        return frozenset({self.pid, *children})


def exit_of(returncode: int | None, *, in_bwrap: bool) -> Exit:
    """What the engine saw. A signal is a negative code (-9: SIGKILL); bubblewrap reports a job
    killed by signal N as 128 + N, which is read back as -N (so a job that itself exits with
    129..192 under bubblewrap is taken for one killed by a signal). SIGXCPU is RLIMIT_CPU: the
    job used its whole CPU time (its timeout + 1 s)."""
    if returncode is None:
        return Exit(None, FailureReason.executor_error, "the job's exit status is unknown")
    code = returncode
    if in_bwrap and 128 < returncode < 128 + signal.NSIG:
        code = 128 - returncode
    if code == -signal.SIGXCPU:
        return Exit(code, FailureReason.timeout, "CPU time limit reached (RLIMIT_CPU)")
    return Exit(code)


async def _until(done: Callable[[], bool], seconds: float) -> bool:
    """Poll ``done`` until it holds or ``seconds`` have passed; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(seconds, 0.0)
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True
