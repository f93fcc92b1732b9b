"""The local-process backend runs real processes (no doubles)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason
from controlroom_devstack.waiting import eventually
from controlroom_executor_docker.backend import RunSpec
from controlroom_executor_docker.local_backend import LocalProcessBackend
from controlroom_executor_docker.settings import ExecutorDockerSettings


def _backend(tmp_path: Path) -> LocalProcessBackend:
    settings = ExecutorDockerSettings()
    return LocalProcessBackend(
        tmp_path,
        python=settings.job_python,
        memory_limit_bytes=512 << 20,
        max_output_bytes=1 << 20,
        log_tail_bytes=4096,
        kill_grace_seconds=0.5,
    )


def _spec(files: dict[str, str], entrypoint: str | None = None, timeout: int = 30) -> RunSpec:
    return RunSpec(
        run_id=uuid4(),
        attempt=1,
        tenant_id="t1",
        job_type="diagram_export",
        code=CodeBundle(
            files=[CodeFile(path=p, content=c) for p, c in files.items()], entrypoint=entrypoint
        ),
        inputs={"source": "raw.events", "target": "gold.events"},
        timeout_seconds=timeout,
    )


async def test_python_entrypoint_runs_with_its_sibling_files_and_inputs(tmp_path: Path) -> None:
    spec = _spec(
        {
            "jobs/etl.py": "import helper, os\n"
            "print(helper.VALUE, os.environ['CONTROLROOM_INPUT_SOURCE'])",
            "jobs/helper.py": "VALUE = 'from-helper'",
        }
    )
    outcome = await _backend(tmp_path).run(spec)
    assert outcome.succeeded and outcome.exit_code == 0
    assert "from-helper raw.events" in outcome.stdout_tail


async def test_explicit_shell_entrypoint_runs_with_sh(tmp_path: Path) -> None:
    spec = _spec({"lib.py": "x = 1", "run.sh": "echo shell-ran; exit 0"}, entrypoint="run.sh")
    outcome = await _backend(tmp_path).run(spec)
    assert outcome.succeeded
    assert "shell-ran" in outcome.stdout_tail


async def test_nonzero_exit_is_a_failure_with_the_code_and_stderr(tmp_path: Path) -> None:
    spec = _spec({"main.py": "import sys\nprint('boom detail', file=sys.stderr)\nsys.exit(3)"})
    outcome = await _backend(tmp_path).run(spec)
    assert outcome.failure_reason is FailureReason.exit_code
    assert outcome.exit_code == 3
    assert outcome.error is not None and "boom detail" in outcome.error


async def test_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_JWT_SECRET", "must-not-leak")
    spec = _spec({"main.py": "import os\nprint(sorted(os.environ))"})
    outcome = await _backend(tmp_path).run(spec)
    assert outcome.succeeded
    assert "CONTROLROOM_JWT_SECRET" not in outcome.stdout_tail
    assert "CONTROLROOM_RUN_ID" in outcome.stdout_tail


async def test_a_job_that_outlives_its_timeout_is_killed(tmp_path: Path) -> None:
    spec = _spec({"main.sh": "sleep 30"}, timeout=1)
    outcome = await _backend(tmp_path).run(spec)
    assert outcome.failure_reason is FailureReason.timeout


async def test_unsupported_entrypoint_is_an_executor_error(tmp_path: Path) -> None:
    outcome = await _backend(tmp_path).run(_spec({"main.rb": "puts 1"}))
    assert outcome.failure_reason is FailureReason.executor_error
    assert outcome.error is not None and ".py and .sh" in outcome.error


async def test_memory_limit_fails_the_run_as_oom(tmp_path: Path) -> None:
    outcome = await _backend(tmp_path).run(_spec({"main.py": "x = bytearray(900 << 20)"}))
    assert outcome.failure_reason is FailureReason.oom


async def test_code_directory_is_removed_after_the_run(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    spec = _spec({"main.py": "print(1)"})
    await backend.run(spec)
    assert not (backend.attempt_dir(spec) / "work").exists()
    assert (backend.attempt_dir(spec) / "logs" / "stdout.log").read_text() == "1\n"


async def test_cancel_terminates_a_running_job(tmp_path: Path) -> None:
    import asyncio

    backend = _backend(tmp_path)
    spec = _spec({"main.sh": "echo started; sleep 30"})
    task = asyncio.create_task(backend.run(spec))

    async def cancelled() -> bool:
        return backend.cancel(spec.run_id)

    await eventually(cancelled, interval=0.01, what="the run to be cancellable")
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.cancelled and not outcome.succeeded
    assert backend.cancel(spec.run_id) is False  # nothing left to cancel


async def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    import asyncio

    backend = _backend(tmp_path)
    spec = _spec({"main.sh": "trap '' TERM; echo ready; sleep 30"})
    task = asyncio.create_task(backend.run(spec))
    log = backend.attempt_dir(spec) / "logs" / "stdout.log"

    async def printed() -> bool:
        return log.exists() and bool(log.read_text())

    await eventually(printed, interval=0.01, what="the job's first output")
    assert backend.cancel(spec.run_id)
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.cancelled and outcome.exit_code is not None and outcome.exit_code < 0
