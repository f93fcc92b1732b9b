"""One attempt's container on a Docker Engine API (Docker or Podman): follow, wait, stop, collect.

Each attempt keeps one engine ``wait`` running in a task of its own, shared by every caller of
:meth:`DockerAttempt.wait` (cancelling a caller never cancels it), and while the container runs,
a watchdog that measures the workspace and stops a job that writes past its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.stream import Stream as AttachStream

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import AttemptKey, Exit, Stream
from controlroom_executor_docker.container_output import attached_output, logged_output
from controlroom_executor_docker.workspace import copy_outputs, usage_bytes

log = logging.getLogger(__name__)

KILLED = 128 + signal.SIGKILL
FILE_TOO_LARGE = 128 + signal.SIGXFSZ
ENGINE_RETRY_SECONDS = 1.0
NEVER_STARTED = "the container was created but never started"
_EXITED = ("exited", "stopped", "dead")
"""Podman says ``stopped`` between the process's exit and its clean-up."""


@dataclass(frozen=True)
class Limits:
    """What the attempt was confined to, as far as judging its exit needs."""

    memory_bytes: int
    workspace_bytes: int | None


@dataclass(frozen=True)
class Timing:
    kill_grace_seconds: float
    watch_interval_seconds: float
    api_timeout_seconds: float


class DockerAttempt:
    """A :class:`~controlroom_executor.backend.RunningAttempt` backed by one container."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        container: DockerContainer,
        key: AttemptKey,
        *,
        workspace: Path | None,
        limits: Limits,
        timing: Timing,
        forget: Callable[[str], None],
        attach: AttachStream | None = None,
        running: bool = True,
        started: bool = True,
    ) -> None:
        """``running``: watch the workspace; ``started`` False: a container left created but
        never started (the executor went away in between), whose exit says so."""
        self.key = key
        self.handle = container.id
        self._docker = docker
        self._container = container
        self._workspace = workspace
        self._limits = limits
        self._timing = timing
        self._forget = forget
        self._attach = attach
        self._stopping = False
        self._over_limit = False
        self._started = started
        self._exit: Exit | None = None
        self._output_ended = asyncio.Event()
        self._waiter: asyncio.Task[int | None] = asyncio.create_task(
            self._engine_wait() if started else _never()
        )
        if not started:
            self._exit = Exit(None, FailureReason.executor_error, NEVER_STARTED)
        self._watchdog: asyncio.Task[None] | None = None
        if running and workspace is not None and limits.workspace_bytes is not None:
            self._watchdog = asyncio.create_task(self._watch(workspace, limits.workspace_bytes))

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        """Stdout and stderr from the start until the container exits.

        The first call reads the attach stream opened before the container started: it applies
        back-pressure, so read it while waiting or the job blocks once the pipe is full. Later
        calls, and adopted attempts, replay the engine's (size-capped) log."""
        attach, self._attach = self._attach, None
        if not self._started:
            return  # nothing ran; the engine's log would wait for a start that never comes
        if attach is None:
            async for chunk in logged_output(self._docker, self.handle):
                yield chunk
            self._output_ended.set()
            return
        try:
            async for chunk in attached_output(attach):
                yield chunk
            self._output_ended.set()
        finally:
            await attach.close()

    async def wait(self) -> Exit:
        if self._exit is None:
            code = await asyncio.shield(self._waiter)
            self._exit = await self._judge(code)
        return self._exit

    async def stop(self, grace_seconds: float) -> None:
        """The engine's stop (SIGTERM, SIGKILL after the grace, rounded up to whole seconds as
        the API takes them), a SIGKILL if it still runs after that, then the engine's word that
        the container has exited."""
        if self._waiter.done():
            return
        self._stopping = True
        deadline = math.ceil(grace_seconds) + self._timing.api_timeout_seconds
        with contextlib.suppress(TimeoutError, aiodocker.DockerError):
            async with asyncio.timeout(deadline):
                await self._container.stop(t=max(0, math.ceil(grace_seconds)))
        if not self._waiter.done():
            with contextlib.suppress(aiodocker.DockerError):  # 409: it exited meanwhile
                await self._container.kill(signal="SIGKILL")
        await asyncio.shield(self._waiter)

    async def collect(self, into: Path) -> None:
        if self._workspace is not None:
            await asyncio.to_thread(copy_outputs, self._workspace, into)

    async def remove(self) -> None:
        """Force-remove the container (killing it if it still runs); the workspace stays."""
        await self.detach()
        try:
            async with asyncio.timeout(self._timing.api_timeout_seconds):
                await self._container.delete(force=True)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
        self._forget(self.handle)

    async def detach(self) -> None:
        """Let go of the container without touching it (the executor is shutting down)."""
        for task in (self._watchdog, self._waiter):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        attach, self._attach = self._attach, None
        if attach is not None:
            await attach.close()

    async def _engine_wait(self) -> int | None:
        """The container's exit code once it has exited; None when it is gone from the engine.

        Podman's ``wait`` answers some 250 ms after the exit (it polls), while its inspect
        already knows: once the output has ended (the usual sign of an exit), inspect is asked
        for a short while, and the engine's ``wait`` remains the answer when it does not say."""
        waiting = asyncio.create_task(self._wait_call())
        output_ended = asyncio.create_task(self._output_ended.wait())
        try:
            await asyncio.wait({waiting, output_ended}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                code = await self._inspected_exit_code()
                if code is not None:
                    return code
            return await waiting
        finally:
            for task in (waiting, output_ended):
                task.cancel()

    async def _inspected_exit_code(self) -> int | None:
        """The exit code if inspect says the container has exited within a second or two."""
        pause = 0.005
        for _ in range(12):
            try:
                async with asyncio.timeout(self._timing.api_timeout_seconds):
                    state = (await self._container.show())["State"]
            except (aiodocker.DockerError, aiohttp.ClientError, TimeoutError):
                return None
            if not state.get("Running") and state.get("Status") in _EXITED:
                return int(state["ExitCode"])
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
        return None

    async def _wait_call(self) -> int | None:
        """The engine's ``wait``. A broken connection (the engine restarting) is retried: only
        the engine's answer ends it."""
        while True:
            try:
                result = await self._container.wait()
                return int(result["StatusCode"])
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    return None
                if exc.status < 500:
                    raise
                error: Exception = exc
            except aiohttp.ClientError as exc:
                error = exc
            log.warning(
                "container wait interrupted; retrying",
                extra={"container": self.handle, "error": str(error)[:300]},
            )
            await asyncio.sleep(ENGINE_RETRY_SECONDS)

    async def _judge(self, code: int | None) -> Exit:
        if code is None:
            return Exit(None, FailureReason.lost, "the container is gone from the engine")
        workspace_bytes = self._limits.workspace_bytes
        if self._over_limit:
            return Exit(
                code,
                FailureReason.exit_code,
                f"workspace over its limit of {workspace_bytes} bytes",
            )
        if await self._oom_killed() or (
            # Podman leaves State.OOMKilled false when the kernel's OOM killer ends the job
            # (seen with Podman 4.3 on cgroup v1): a SIGKILL we did not send, under a memory
            # limit, is taken for the OOM killer's.
            code == KILLED and self._limits.memory_bytes > 0 and not self._stopping
        ):
            return Exit(
                code, FailureReason.oom, f"out of memory (limit {self._limits.memory_bytes} bytes)"
            )
        if code == FILE_TOO_LARGE and workspace_bytes is not None and not self._stopping:
            return Exit(
                code,
                FailureReason.exit_code,
                f"a file reached the workspace limit of {workspace_bytes} bytes (SIGXFSZ)",
            )
        return Exit(code, None, "stopped by the executor" if self._stopping else None)

    async def _oom_killed(self) -> bool:
        try:
            async with asyncio.timeout(self._timing.api_timeout_seconds):
                state = (await self._container.show())["State"]
        except (aiodocker.DockerError, TimeoutError):
            return False
        return bool(state.get("OOMKilled"))

    async def _watch(self, workspace: Path, limit: int) -> None:
        """Stop the job once the workspace holds more than ``limit`` bytes (checked between
        sleeps of the watch interval, in a thread: the walk blocks)."""
        while not self._waiter.done():
            used = await asyncio.to_thread(usage_bytes, workspace)
            if used > limit:
                log.info(
                    "workspace over its limit; stopping the attempt",
                    extra={"run_id": str(self.key.run_id), "used": used, "limit": limit},
                )
                self._over_limit = True
                await self.stop(self._timing.kill_grace_seconds)
                return
            await asyncio.wait([self._waiter], timeout=self._timing.watch_interval_seconds)


async def _never() -> None:
    return None
