"""The executor runtime in executor-docker, on the local-process backend, against a real
nats-server and Postgres: claim then ack, reports, logs, progress, timeout, cancellation,
recovery from a crash before start, a report that survives a database failure, secrets."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from fastapi import FastAPI

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec, RepoRef
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import CancelRequested
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually, until
from controlroom_executor.store import AttemptStore
from controlroom_executor_docker.app import create_app
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_executor_docker.store import tables
from controlroom_runtime import db
from controlroom_runtime.objectstore import ObjectStoreSettings


def _dispatch(code: str, *, path: str = "main.py", timeout: int = 30) -> DispatchRun:
    return DispatchRun(
        tenant_id="t1",
        run_id=uuid4(),
        attempt=1,
        executor_kind="docker",
        job=JobRequest(
            job_type="diagram_export",
            spec=JobSpec(text="t", inputs={"source": "raw.orders"}),
            code=CodeBundle(files=[CodeFile(path=path, content=code)]),
            created_by="test",
        ),
        timeout_seconds=timeout,
    )


def _app(nats_url: str, database_url: str, tmp_path: Path, **overrides: Any) -> FastAPI:
    return create_app(
        ExecutorDockerSettings(
            nats_url=nats_url,
            database_url=database_url,
            job_backend="local",
            executor_workdir=tmp_path / "work",
            executor_id="exec-test",
            object_store=ObjectStoreSettings(directory=tmp_path / "objects"),
            kill_grace_seconds=1.0,
            **overrides,
        )
    )


async def _send(tap: EventTap, command: DispatchRun) -> str:
    await tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
    return str(command.run_id)


def _of(rid: str) -> Any:
    return lambda d: d["run_id"] == rid


async def test_dispatched_run_reports_started_then_completed_unsandboxed(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    code = "import os\nprint(os.environ['CONTROLROOM_INPUT_SOURCE'])\nprint('rows: 42')"
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, _dispatch(code))
        started = await event_tap.wait_for(subjects.ATTEMPT_STARTED, _of(rid))
        assert started.data["sandboxed"] is False
        assert started.data["image"] is None  # a local process runs in no image
        assert started.data["executor_id"] == "exec-test"
        done = await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid))
        assert done.data["exit_code"] == 0
        assert done.data["summary"] == "rows: 42"
        logs = await event_tap.wait_for(subjects.RUN_LOG, _of(rid))
        assert logs.data["lines"] == ["raw.orders", "rows: 42"]


async def test_failing_run_reports_failed_with_exit_code_and_stderr(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, _dispatch("import sys\nsys.exit('bad input')"))
        failed = await event_tap.wait_for(subjects.ATTEMPT_FAILED, _of(rid))
        assert failed.data["exit_code"] == 1
        assert failed.data["failure_reason"] == "exit_code"
        assert "bad input" in failed.data["error"]


async def test_log_lines_stream_in_order_and_progress_lines_become_progress(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "for i in range(300):\n"
        "    print(f'line {i}')\n"
        "    if i == 150: print('::progress 50 half way', flush=True)\n"
        "print('oops', file=sys.stderr)\n"
    )
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, _dispatch(code))
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid))
        progress = await event_tap.wait_for(subjects.RUN_PROGRESS, _of(rid))
        assert (progress.data["percent"], progress.data["message"]) == (50.0, "half way")

        def lines(stream: str) -> list[str]:
            batches = event_tap.matching(
                subjects.RUN_LOG, lambda d: d["run_id"] == rid and d["stream"] == stream
            )
            return [line for b in batches for line in b.data["lines"]]

        await until(lambda: len(lines("stdout")) == 301, what="all stdout lines")
        assert [ln for ln in lines("stdout") if ln.startswith("line")] == [
            f"line {i}" for i in range(300)
        ]
        assert lines("stderr") == ["oops"]


async def test_files_under_output_become_artifacts_and_symlinks_do_not(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    code = (
        "import os\n"
        "os.makedirs('output/sub')\n"
        "open('output/report.csv', 'w').write('a,b\\n1,2\\n')\n"
        "open('output/sub/x.json', 'w').write('{}')\n"
        "os.symlink('/etc/passwd', 'output/passwd')\n"
        "print('wrote')\n"
    )
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, _dispatch(code))
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid))
        stored = event_tap.matching(subjects.ARTIFACT_STORED, _of(rid))
        by_path = {s.data["path"]: s.data for s in stored}
        assert sorted(by_path) == ["logs/stdout.log", "output/report.csv", "output/sub/x.json"]
        report = by_path["output/report.csv"]
        assert report["size_bytes"] == 8 and report["content_type"] == "text/csv"
        kept = tmp_path / "objects" / report["storage_key"]
        assert report["checksum"] == "sha256:" + hashlib.sha256(kept.read_bytes()).hexdigest()
        await until(lambda: not (tmp_path / "work" / rid).exists(), what="attempt dir removed")


async def test_same_attempt_dispatched_twice_runs_once(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):
        command = _dispatch("print('once')")
        twin = command.model_copy(update={"event_id": uuid4()})  # same attempt, new message
        rid = await _send(event_tap, command)
        await _send(event_tap, twin)
        marker = await _send(event_tap, _dispatch("print('marker')"))
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(marker))
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid))
        assert len(event_tap.matching(subjects.ATTEMPT_STARTED, _of(rid))) == 1


async def test_a_claim_committed_before_a_crash_is_run_once_at_restart(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    """The executor claimed the attempt (the dispatch acked) and died before starting it: its
    restart runs it, and the dispatch delivered again is not run a second time."""
    command = _dispatch("print('resumed')")
    engine = db.create_engine(database_url)
    app = _app(nats_url, database_url, tmp_path)
    async with running(app):  # migrations applied
        pass
    try:
        async with db.session_factory(engine)() as session, session.begin():
            assert await AttemptStore(tables).claim(session, command, "exec-test")
    finally:
        await engine.dispose()
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, command)  # redelivered
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid))
        marker = await _send(event_tap, _dispatch("print('marker')"))
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(marker))
        assert len(event_tap.matching(subjects.ATTEMPT_STARTED, _of(rid))) == 1


async def test_a_run_past_its_timeout_is_stopped_and_reported_timed_out(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):
        rid = await _send(event_tap, _dispatch("sleep 60", path="main.sh", timeout=1))
        failed = await event_tap.wait_for(subjects.ATTEMPT_FAILED, _of(rid), timeout=20)
        assert failed.data["failure_reason"] == "timeout"
        assert failed.data["error"] == "timed out after 1s"


async def test_cancel_while_running_stops_the_job(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):
        command = _dispatch("echo started\nsleep 60", path="main.sh", timeout=120)
        rid = await _send(event_tap, command)
        await event_tap.wait_for(subjects.RUN_LOG, _of(rid))  # it is running
        cancel = CancelRequested(tenant_id="t1", run_id=command.run_id, requested_by="tester")
        await event_tap.publish(cancel.subject, cancel.model_dump_json().encode())
        cancelled = await event_tap.wait_for(subjects.ATTEMPT_CANCELLED, _of(rid), timeout=20)
        assert cancelled.data["reason"] == "cancelled"


async def test_cancel_before_the_dispatch_arrives_never_starts_it(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):
        command = _dispatch("print('must not run')")
        cancel = CancelRequested(tenant_id="t1", run_id=command.run_id, requested_by="tester")
        await event_tap.publish(cancel.subject, cancel.model_dump_json().encode())
        # The executor's own cancel consumer has recorded it once a later one is handled.
        rid = str(command.run_id)
        await eventually(
            lambda: _cancellation_noted(database_url, command), what="cancellation recorded"
        )
        await _send(event_tap, command)
        cancelled = await event_tap.wait_for(subjects.ATTEMPT_CANCELLED, _of(rid))
        assert cancelled.data["reason"] == "cancelled before it started"
        assert event_tap.matching(subjects.ATTEMPT_STARTED, _of(rid)) == []


async def _cancellation_noted(database_url: str, command: DispatchRun) -> bool:
    engine = db.create_engine(database_url)
    try:
        async with db.session_factory(engine)() as session:
            return await AttemptStore(tables).is_cancelled(session, command.run_id)
    finally:
        await engine.dispose()


async def test_a_report_that_cannot_commit_is_retried_until_it_does(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    """The database refuses the final report (its table is away) while the job ends: the
    outcome and the artifacts are kept and reported once it is back."""
    engine = db.create_engine(database_url)
    async with running(_app(nats_url, database_url, tmp_path)):
        command = _dispatch("sleep 1\nmkdir -p output\necho kept > output/a.txt", path="main.sh")
        rid = await _send(event_tap, command)
        await event_tap.wait_for(subjects.ATTEMPT_STARTED, _of(rid))
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("ALTER TABLE executor_docker.attempts RENAME TO attempts_away")
                )
            await eventually(lambda: _job_gone(tmp_path, rid), timeout=20, what="the job has ended")
        finally:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("ALTER TABLE executor_docker.attempts_away RENAME TO attempts")
                )
            await engine.dispose()
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, _of(rid), timeout=30)
        stored = event_tap.matching(subjects.ARTIFACT_STORED, _of(rid))
        assert "output/a.txt" in {s.data["path"] for s in stored}


async def _job_gone(tmp_path: Path, rid: str) -> bool:
    # The attempt's files are collected (output/ moved beside logs/) once the job has exited.
    return (tmp_path / "work" / rid / "1" / "output" / "a.txt").exists()


async def test_a_jobs_secret_reaches_it_and_nothing_stored_holds_it(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    secret = "sk-live-0123456789abcdef"
    code = (
        "import os\n"
        "value = os.environ['API_TOKEN']\n"
        "print('token is', value)\n"
        "os.makedirs('output')\n"
        "open('output/leak.txt', 'w').write('leaked ' + value)\n"
        "raise SystemExit('failing with ' + value)\n"
    )
    app = _app(nats_url, database_url, tmp_path, job_secrets={"t1": {"API_TOKEN": secret}})
    async with running(app):
        rid = await _send(event_tap, _dispatch(code))
        failed = await event_tap.wait_for(subjects.ATTEMPT_FAILED, _of(rid))
        assert "failing with [redacted]" in failed.data["error"]
        await event_tap.wait_for(subjects.RUN_LOG, _of(rid))
        for seen in event_tap.seen:
            assert secret not in str(seen.data)
        stored = event_tap.matching(subjects.ARTIFACT_STORED, _of(rid))
        assert {s.data["path"] for s in stored} >= {"output/leak.txt", "logs/stdout.log"}
        for artifact in stored:
            content = (tmp_path / "objects" / artifact.data["storage_key"]).read_bytes()
            assert secret.encode() not in content
            assert b"[redacted]" in content


async def test_cancel_during_start_ends_a_hanging_checkout_and_never_runs_the_job(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    """The attempt is still starting (its repository's server accepts and never answers)."""
    import asyncio

    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        while await reader.read(65536):  # never answers; ends when git is killed
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = _app(
        nats_url,
        database_url,
        tmp_path,
        checkout={"allow_insecure_http": True, "timeout_seconds": 60},
    )
    try:
        async with running(app):
            command = _dispatch("print('must not run')")
            job = command.job.model_copy(
                update={"repo": RepoRef(url=f"http://127.0.0.1:{port}/repo.git")}
            )
            command = command.model_copy(update={"job": job})
            rid = await _send(event_tap, command)
            await asyncio.wait_for(accepted.wait(), timeout=15)  # git is fetching
            cancel = CancelRequested(tenant_id="t1", run_id=command.run_id, requested_by="t")
            await event_tap.publish(cancel.subject, cancel.model_dump_json().encode())
            cancelled = await event_tap.wait_for(subjects.ATTEMPT_CANCELLED, _of(rid))
            assert cancelled.data["reason"] == "cancelled before it started"
            assert event_tap.matching(subjects.ATTEMPT_STARTED, _of(rid)) == []
    finally:
        server.close()
        await server.wait_closed()


def test_production_refuses_the_local_backend() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="refuses the local backend"):
        ExecutorDockerSettings(env="production", job_backend="local")
    with pytest.raises(ValidationError, match="refuses the local backend"):
        ExecutorDockerSettings(env="production", job_backend="auto", docker_url=None)
    chosen = ExecutorDockerSettings(env="production", docker_url="unix:///run/podman.sock")
    assert chosen.chosen_backend() == "docker"
