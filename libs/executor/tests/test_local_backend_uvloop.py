"""The local backend under uvloop, the event loop the services run on, with many jobs at once.

Its pipes were once followed with ``connect_read_pipe``: under uvloop the transport closed the
descriptor and the pipe's file object closed the same number again when collected, by then
another file's (EBADF in unrelated code, seen at 16 jobs at once in the benchmark)."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import uvloop

from controlroom_contracts.api import CodeBundle, CodeFile
from controlroom_contracts.routing import ExecutionProfile
from controlroom_executor.backend import AttemptKey, AttemptSpec
from controlroom_executor.local_backend import LocalProcessBackend, ensure_job_user

JOBS = 120


async def _one(backend: LocalProcessBackend, root: Path, n: int) -> tuple[int | None, bytes]:
    workspace = root / str(n) / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "main.sh").write_text(f"echo job {n}\n")
    spec = AttemptSpec(
        key=AttemptKey(uuid.uuid4(), 1),
        tenant_id="t1",
        job_type="diagram_export",
        executor_id="uvloop-test",
        code=CodeBundle(files=[CodeFile(path="main.sh", content="")]),
        workspace=workspace,
        command=["sh", "main.sh"],
        env={"PATH": "/usr/bin:/bin"},
        profile=ExecutionProfile(image="-", commands={".sh": ["sh"]}),
        timeout_seconds=30,
    )
    running = await backend.launch(spec)
    out = b""
    async for stream, chunk in running.output():
        if stream == "stdout":
            out += chunk
    exit = await running.wait()
    await running.remove()
    if n % 10 == 0:  # a file object left to the collector closes its descriptor then
        gc.collect()
    return exit.exit_code, out


def _churn(path: Path, stop: threading.Event, errors: list[OSError]) -> None:
    """Open, read and close a file over and over on another thread, as the executor's worker
    threads do (a descriptor closed twice elsewhere would be one of these, reused)."""
    while not stop.is_set():
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.read(fd, 16)
                os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            errors.append(exc)
        time.sleep(0.0002)  # let the event loop's thread have the interpreter


def test_many_local_jobs_at_once_under_uvloop_close_each_descriptor_once() -> None:
    if os.geteuid() != 0:
        pytest.skip("runs jobs as the dedicated job user, which needs root")
    # Under /tmp itself: the job user must pass through every directory above its workspace.
    root = Path(tempfile.mkdtemp(prefix="controlroom-uvloop-"))
    root.chmod(0o711)

    async def main() -> list[tuple[int | None, bytes]]:
        import asyncio

        backend = LocalProcessBackend(job_user=ensure_job_user())
        try:
            return await asyncio.gather(*(_one(backend, root, n) for n in range(JOBS)))
        finally:
            await backend.close()

    probe = root / "probe"
    probe.write_text("probe")
    stop, errors = threading.Event(), list[OSError]()
    churners = [threading.Thread(target=_churn, args=(probe, stop, errors)) for _ in range(2)]
    for thread in churners:
        thread.start()
    try:
        results = uvloop.run(main())
    finally:
        stop.set()
        for thread in churners:
            thread.join()
        shutil.rmtree(root, ignore_errors=True)
    assert errors == []
    assert results == [(0, f"job {n}\n".encode()) for n in range(JOBS)]
