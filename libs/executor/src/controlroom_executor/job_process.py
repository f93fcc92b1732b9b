"""A local job's first process: started off the event loop, its exit and output followed on it.

The process is forked on the backend's spawner thread, not on the event loop: between fork and
exec the child joins its cgroup (a migration can wait ~10 ms for an RCU grace period), unshares
namespaces and drops privileges, and ``subprocess`` blocks its caller until the exec. Its exit
is watched through a pidfd and reaped here (not by the event loop's child watcher), and the
pidfd is how it is signalled, so a recycled pid is never hit.

A job's parent-death signal (and bubblewrap's ``--die-with-parent``) fires when the *thread*
that forked it ends: the spawner thread lives as long as the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import IO

from controlroom_executor.backend import Stream

OUTPUT_BUFFER_BYTES = 1 << 20
"""Output held for a slow reader; beyond it the pipes are not read (the job blocks writing)."""
STREAMS: tuple[Stream, Stream] = ("stdout", "stderr")
READ_BYTES = 1 << 16


class JobProcess:
    def __init__(
        self, popen: subprocess.Popen[bytes], pidfd: int, limit: int = OUTPUT_BUFFER_BYTES
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.returncode: int | None = None
        self.exited = asyncio.Event()
        self.changed = asyncio.Event()
        """Set when output arrives, a pipe closes or the process exits."""
        self.open: set[Stream] = set()
        self._chunks: deque[tuple[Stream, bytes]] = deque()
        self._buffered = 0
        self._limit = limit
        self._paused = False
        self._pipes: dict[Stream, IO[bytes]] = {}
        self._loop = asyncio.get_running_loop()
        self._pidfd: int | None = pidfd
        self._loop.add_reader(self._pidfd, self._reap)

    @classmethod
    async def start(
        cls,
        spawner: Executor,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        pass_fds: Sequence[int],
        preexec_fn: Callable[[], None],
    ) -> JobProcess:
        """Start ``argv`` in a session of its own on the ``spawner`` thread, with stdout and
        stderr piped here."""

        def spawn() -> tuple[subprocess.Popen[bytes], int]:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                cwd=cwd,
                env=env,
                pass_fds=pass_fds,
                start_new_session=True,
                preexec_fn=preexec_fn,
            )
            # At once: holding a pidfd on it is what tells the orphan reaper to keep off
            # (process_tree.reap_orphans), and what makes signalling it safe.
            return popen, os.pidfd_open(popen.pid)

        loop = asyncio.get_running_loop()
        starting = loop.run_in_executor(spawner, spawn)
        try:
            popen, pidfd = await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(functools.partial(_abandon, spawner))
            raise
        process = cls(popen, pidfd)
        try:
            for name, pipe in zip(STREAMS, (popen.stdout, popen.stderr), strict=True):
                await process._connect(name, pipe)
        except BaseException:
            process.kill()
            process.close()
            raise
        return process

    async def _connect(self, name: Stream, pipe: IO[bytes] | None) -> None:
        """Follow ``pipe`` with a reader on the loop, reading it here with ``os.read``.

        Not ``connect_read_pipe``: under uvloop its transport closes the descriptor itself
        while the pipe's file object, closed again when collected, could then close a number
        the process has reused meanwhile (seen as EBADF in unrelated code under load). Here the
        file object is the one owner of the descriptor and is closed once."""
        assert pipe is not None
        os.set_blocking(pipe.fileno(), False)
        self._pipes[name] = pipe
        self.open.add(name)
        self._loop.add_reader(pipe.fileno(), self._readable, name)

    def _readable(self, name: Stream) -> None:
        pipe = self._pipes[name]
        try:
            data = os.read(pipe.fileno(), READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._fed(name, data)
            return
        self._loop.remove_reader(pipe.fileno())
        pipe.close()
        self._lost(name)

    def take(self) -> tuple[Stream, bytes] | None:
        """The oldest chunk of output not yet taken, or None."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk[1])
        if self._paused and self._buffered <= self._limit // 2:
            self._reading(True)
        return chunk

    def kill(self) -> None:
        """SIGKILL the process, unless it has already been reaped."""
        if self._pidfd is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        """Close the output pipes (a process still running is reaped once it exits)."""
        for name, pipe in self._pipes.items():
            if not pipe.closed:
                self._loop.remove_reader(pipe.fileno())
                pipe.close()
                self._lost(name)

    def _fed(self, name: Stream, data: bytes) -> None:
        self._chunks.append((name, data))
        self._buffered += len(data)
        self.changed.set()
        if self._buffered >= self._limit and not self._paused:
            self._reading(False)

    def _lost(self, name: Stream) -> None:
        self.open.discard(name)
        self.changed.set()

    def _reading(self, on: bool) -> None:
        self._paused = not on
        for name, pipe in self._pipes.items():
            if not pipe.closed:
                if on:
                    self._loop.add_reader(pipe.fileno(), self._readable, name)
                else:
                    self._loop.remove_reader(pipe.fileno())

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: the status is lost
            pid, status = self.pid, -1
        if pid == 0:
            return
        self.returncode = os.waitstatus_to_exitcode(status) if status != -1 else None
        # So that the Popen object never waits for (or warns about) a process it started.
        self._popen.returncode = self.returncode if self.returncode is not None else -1
        assert self._pidfd is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self.exited.set()
        self.changed.set()


def _abandon(
    spawner: Executor, starting: asyncio.Future[tuple[subprocess.Popen[bytes], int]]
) -> None:
    """A launch cancelled while its process was being started: kill and reap that process."""
    if starting.cancelled() or starting.exception() is not None:
        return
    popen, pidfd = starting.result()

    def finish() -> None:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        popen.wait(timeout=10)
        os.close(pidfd)
        for pipe in (popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()

    spawner.submit(finish)
