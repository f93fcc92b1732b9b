"""Local-process backend: unsandboxed dev mode for machines without a container engine.

Each attempt gets its own directory holding the job's code files at their relative paths, a
clean environment, and rlimits on CPU time, memory, file size and open files. This is *not*
isolation: every view of such a run says ``sandboxed: false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
from collections import deque
from dataclasses import replace
from pathlib import Path
from uuid import UUID

from controlroom_contracts.api import FailureReason
from controlroom_executor_docker.backend import RunOutcome, RunSpec

INTERPRETERS = {".py": "python", ".sh": "sh"}


class UnsupportedEntrypoint(Exception):
    """The entrypoint's extension has no interpreter here."""


class LocalProcessBackend:
    sandboxed = False

    def __init__(
        self,
        workdir: Path,
        *,
        python: str,
        memory_limit_bytes: int,
        max_output_bytes: int,
        log_tail_bytes: int,
        keep_workdirs: bool = False,
        kill_grace_seconds: float = 5.0,
    ) -> None:
        self._root = workdir.resolve()
        self._python = python
        self._memory = memory_limit_bytes
        self._max_output = max_output_bytes
        self._tail = log_tail_bytes
        self._keep = keep_workdirs
        self._grace = kill_grace_seconds
        self._processes: dict[UUID, asyncio.subprocess.Process] = {}
        self._starting: set[UUID] = set()
        self._cancelled: set[UUID] = set()
        self._reapers: set[asyncio.Task[None]] = set()

    def cancel(self, run_id: UUID) -> bool:
        """SIGTERM the run's process group now and SIGKILL it after the grace period."""
        if run_id not in self._starting and run_id not in self._processes:
            return False
        self._cancelled.add(run_id)
        process = self._processes.get(run_id)
        if process is not None:
            self._reap(process)
        return True

    def _reap(self, process: asyncio.subprocess.Process) -> None:
        reaper = asyncio.create_task(self._terminate(process))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    def attempt_dir(self, spec: RunSpec) -> Path:
        return self._root / str(spec.run_id) / str(spec.attempt)

    async def run(self, spec: RunSpec) -> RunOutcome:
        base = self.attempt_dir(spec)
        code_dir = base / "work"
        self._starting.add(spec.run_id)
        try:
            self._materialise(spec, code_dir)
            command = self._command(spec.code.entrypoint_path())
            if spec.run_id in self._cancelled:  # cancelled before it could start
                return RunOutcome(None, None, "cancelled before start", cancelled=True)
            outcome = await self._execute(spec, command, code_dir, base)
            if spec.run_id in self._cancelled:
                outcome = RunOutcome(
                    outcome.exit_code, None, "cancelled", outcome.stdout_tail, True
                )
            return replace(outcome, files_dir=self._keep_outputs(code_dir, base))
        except (UnsupportedEntrypoint, ValueError, OSError) as exc:
            return RunOutcome(None, FailureReason.executor_error, str(exc))
        finally:
            self._starting.discard(spec.run_id)
            self._processes.pop(spec.run_id, None)
            self._cancelled.discard(spec.run_id)
            if not self._keep:
                shutil.rmtree(code_dir, ignore_errors=True)

    def _keep_outputs(self, code_dir: Path, base: Path) -> Path:
        """Move ``output/`` out of the code directory (which is removed) beside ``logs/``."""
        produced = code_dir / "output"
        if produced.is_dir() and not produced.is_symlink():
            target = base / "output"
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(produced), str(target))
        return base

    def _materialise(self, spec: RunSpec, code_dir: Path) -> None:
        if code_dir.exists():  # a previous try of this same attempt (redelivery after a crash)
            shutil.rmtree(code_dir)
        code_dir.mkdir(parents=True)
        for file in spec.code.files:
            target = (code_dir / file.path).resolve()
            # Contracts already refuse '..' and absolute paths; this is the last line of defence.
            if not target.is_relative_to(code_dir.resolve()):
                raise ValueError(f"code file path escapes the work directory: {file.path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content)

    def _command(self, entrypoint: str) -> list[str]:
        suffix = Path(entrypoint).suffix
        if suffix == ".py":
            # -E: ignore PYTHON* variables; -s: no user site-packages.
            return [self._python, "-E", "-s", entrypoint]
        if suffix == ".sh":
            return ["/bin/sh", entrypoint]
        raise UnsupportedEntrypoint(
            f"entrypoint {entrypoint!r}: only .py and .sh files can run on this executor"
        )

    def _environment(self, spec: RunSpec, code_dir: Path) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(code_dir),
            "TMPDIR": str(code_dir),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "CONTROLROOM_RUN_ID": str(spec.run_id),
            "CONTROLROOM_ATTEMPT": str(spec.attempt),
            "CONTROLROOM_JOB_TYPE": spec.job_type,
        }
        for key, value in spec.inputs.items():
            name = "CONTROLROOM_INPUT_" + "".join(c if c.isalnum() else "_" for c in key).upper()
            env[name] = value
        return env

    def _limits(self, cpu_seconds: int) -> None:
        """Runs in the child between fork and exec."""
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (self._memory, self._memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self._max_output, self._max_output))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    async def _execute(
        self, spec: RunSpec, command: list[str], code_dir: Path, base: Path
    ) -> RunOutcome:
        logs = base / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=code_dir,
            env=self._environment(spec, code_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills the whole tree
            preexec_fn=lambda: self._limits(spec.timeout_seconds + 1),
        )
        self._processes[spec.run_id] = process
        if spec.run_id in self._cancelled:  # the cancel came while the process was spawning
            self._reap(process)
        assert process.stdout is not None and process.stderr is not None
        stdout_tail: deque[bytes] = deque()
        stderr_tail: deque[bytes] = deque()
        readers = asyncio.gather(
            _pump(process.stdout, logs / "stdout.log", stdout_tail, self._tail),
            _pump(process.stderr, logs / "stderr.log", stderr_tail, self._tail),
        )
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), timeout=spec.timeout_seconds)
        except TimeoutError:
            timed_out = True
            await self._terminate(process)
        await readers
        exit_code = process.returncode
        stderr_text = b"".join(stderr_tail).decode(errors="replace")[-self._tail :]
        stdout_text = b"".join(stdout_tail).decode(errors="replace")[-self._tail :]
        if timed_out:
            return RunOutcome(
                exit_code,
                FailureReason.timeout,
                f"timed out after {spec.timeout_seconds}s",
                stdout_text,
            )
        if exit_code == 0:
            return RunOutcome(0, None, None, stdout_text)
        if exit_code == -signal.SIGXCPU:  # RLIMIT_CPU: the job used its whole time budget
            return RunOutcome(
                exit_code, FailureReason.timeout, "CPU time limit reached", stdout_text
            )
        if "MemoryError" in stderr_text:
            return RunOutcome(
                exit_code, FailureReason.oom, _describe(exit_code, stderr_text), stdout_text
            )
        return RunOutcome(
            exit_code, FailureReason.exit_code, _describe(exit_code, stderr_text), stdout_text
        )

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group, then SIGKILL after the grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self._grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def _describe(exit_code: int | None, stderr_text: str) -> str:
    head = f"exited with code {exit_code}"
    if exit_code is not None and exit_code < 0:
        head = f"killed by signal {signal.Signals(-exit_code).name}"
    tail = stderr_text.strip()
    return f"{head}: {tail}" if tail else head


async def _pump(stream: asyncio.StreamReader, path: Path, tail: deque[bytes], keep: int) -> None:
    """Copy a child's output to its log file, keeping the last ``keep`` bytes in memory."""
    kept = 0
    with path.open("wb") as out:
        while chunk := await stream.read(65536):
            out.write(chunk)
            out.flush()  # the log file is readable while the job runs
            tail.append(chunk)
            kept += len(chunk)
            while tail and kept - len(tail[0]) >= keep:
                kept -= len(tail.popleft())
