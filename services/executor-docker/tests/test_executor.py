"""executor-docker against a real nats-server and Postgres."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.commands import DispatchRun
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_executor_docker.app import create_app
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_runtime.objectstore import ObjectStoreSettings


def _dispatch(code: str, attempt: int = 1) -> DispatchRun:
    return DispatchRun(
        tenant_id="t1",
        run_id=uuid4(),
        attempt=attempt,
        executor_kind="docker",
        job=JobRequest(
            job_type="diagram_export",
            spec=JobSpec(text="t"),
            code=CodeBundle(files=[CodeFile(path="main.py", content=code)]),
            created_by="test",
        ),
        timeout_seconds=30,
    )


def _app(nats_url: str, database_url: str, tmp_path: Path) -> object:
    return create_app(
        ExecutorDockerSettings(
            nats_url=nats_url,
            database_url=database_url,
            executor_workdir=tmp_path / "work",
            executor_id="exec-test",
            object_store=ObjectStoreSettings(directory=tmp_path / "objects"),
        )
    )


async def test_dispatched_run_reports_started_then_completed_unsandboxed(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):  # type: ignore[arg-type]
        command = _dispatch("print('rows: 42')")
        await event_tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
        rid = str(command.run_id)
        started = await event_tap.wait_for(subjects.ATTEMPT_STARTED, lambda d: d["run_id"] == rid)
        assert started.data["sandboxed"] is False
        assert started.data["executor_id"] == "exec-test"
        done = await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, lambda d: d["run_id"] == rid)
        assert done.data["exit_code"] == 0
        assert done.data["summary"] == "rows: 42"


async def test_failing_run_reports_failed_with_exit_code(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):  # type: ignore[arg-type]
        command = _dispatch("raise SystemExit(5)")
        await event_tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
        failed = await event_tap.wait_for(
            subjects.ATTEMPT_FAILED, lambda d: d["run_id"] == str(command.run_id)
        )
        assert failed.data["exit_code"] == 5
        assert failed.data["failure_reason"] == "exit_code"


async def test_same_attempt_dispatched_twice_runs_once(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):  # type: ignore[arg-type]
        command = _dispatch("print('once')")
        twin = command.model_copy(update={"event_id": uuid4()})  # same attempt, new message
        await event_tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
        await event_tap.publish(twin.dispatch_subject(), twin.model_dump_json().encode())
        marker = _dispatch("print('marker')")
        await event_tap.publish(marker.dispatch_subject(), marker.model_dump_json().encode())
        await event_tap.wait_for(
            subjects.ATTEMPT_COMPLETED, lambda d: d["run_id"] == str(marker.run_id)
        )
        await event_tap.wait_for(
            subjects.ATTEMPT_COMPLETED, lambda d: d["run_id"] == str(command.run_id)
        )
        rid = str(command.run_id)
        assert len(event_tap.matching(subjects.ATTEMPT_STARTED, lambda d: d["run_id"] == rid)) == 1


async def test_malformed_dispatch_is_dead_lettered(
    nats_url: str, database_url: str, event_tap: EventTap, tmp_path: Path
) -> None:
    async with running(_app(nats_url, database_url, tmp_path)):  # type: ignore[arg-type]
        await event_tap.publish(subjects.dispatch_subject("docker"), b'{"tenant_id": "t1"}')
        dead = await event_tap.wait_for(subjects.deadletter_subject("executor-docker"))
        assert "run_id" in dead.data["reason"]


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
    async with running(_app(nats_url, database_url, tmp_path)):  # type: ignore[arg-type]
        command = _dispatch(code)
        await event_tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
        rid = str(command.run_id)
        await event_tap.wait_for(subjects.ATTEMPT_COMPLETED, lambda d: d["run_id"] == rid)
        stored = event_tap.matching(subjects.ARTIFACT_STORED, lambda d: d["run_id"] == rid)
        by_path = {s.data["path"]: s.data for s in stored}
        assert sorted(by_path) == ["logs/stdout.log", "output/report.csv", "output/sub/x.json"]
        report = by_path["output/report.csv"]
        assert report["size_bytes"] == 8 and report["content_type"] == "text/csv"
        kept = tmp_path / "objects" / report["storage_key"]
        import hashlib

        assert report["checksum"] == "sha256:" + hashlib.sha256(kept.read_bytes()).hexdigest()
        assert not (tmp_path / "work" / rid / "1" / "output").exists()
