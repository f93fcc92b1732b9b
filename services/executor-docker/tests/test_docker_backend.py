"""The Docker API backend against a real engine (Podman's service here): real containers, real
limits, no doubles. Each test's executor id labels its containers; teardown removes them all."""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import aiodocker
import pytest

from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason
from controlroom_contracts.routing import ExecutionProfile, Network
from controlroom_devstack.engine import ContainerEngine
from controlroom_devstack.images import PYTHON_IMAGE, SHELL_IMAGE
from controlroom_devstack.waiting import eventually
from controlroom_executor.backend import (
    LABEL_PREFIX,
    AttemptKey,
    AttemptSpec,
    ExecutionBackend,
    Exit,
    LaunchFailed,
    RunningAttempt,
)
from controlroom_executor_docker.container_config import Rlimits, container_config
from controlroom_executor_docker.docker_backend import DockerBackend

MiB = 1 << 20
JOB_UID = 65534


def _spec(
    workspace: Path,
    script: str,
    *,
    executor_id: str,
    image: str = SHELL_IMAGE,
    memory: int = 256 * MiB,
    pids: int = 64,
    workspace_bytes: int = 64 * MiB,
    network: Network = "none",
    env: dict[str, str] | None = None,
) -> AttemptSpec:
    """An attempt running ``script`` (sh, or python3 for the Python image) from the workspace."""
    entrypoint = "main.py" if image == PYTHON_IMAGE else "main.sh"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / entrypoint).write_text(script)
    profile = ExecutionProfile.model_validate(
        {
            "image": image,
            "commands": {".sh": ["sh"], ".py": ["python3", "-I"]},
            "memory": memory,
            "pids": pids,
            "tmp": 16 * MiB,
            "workspace": workspace_bytes,
            "network": network,
        }
    )
    command = profile.command_for(entrypoint)
    assert command is not None
    return AttemptSpec(
        key=AttemptKey(uuid4(), 1),
        tenant_id="t1",
        job_type="test",
        executor_id=executor_id,
        code=CodeBundle(files=[CodeFile(path=entrypoint, content=script)]),
        workspace=workspace,
        command=command,
        env=env or {"CONTROLROOM_JOB": "yes"},
        profile=profile,
        timeout_seconds=60,
    )


async def _finish(attempt: RunningAttempt, timeout: float = 120) -> tuple[Exit, bytes, bytes]:
    """Read the output while waiting for the exit (the attach stream is back-pressured)."""
    out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    async def read() -> None:
        async for stream, chunk in attempt.output():
            out[stream] += chunk

    async with asyncio.timeout(timeout):
        _, exit_ = await asyncio.gather(read(), attempt.wait())
    return exit_, bytes(out["stdout"]), bytes(out["stderr"])


def _job_processes(container_id: str) -> list[int]:
    """Host pids of the job's processes: in the container's cgroup and running as the job's
    uid (conmon, the engine's monitor, has the id in its cgroup too but runs as root)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cgroup = Path(entry.path, "cgroup").read_text()
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        if container_id in cgroup and int(uid) == JOB_UID:
            found.append(int(entry.name))
    return found


async def _running(container_id: str) -> list[int]:
    return await asyncio.to_thread(_job_processes, container_id)


async def _gone(container_id: str) -> bool:
    return not await asyncio.to_thread(_job_processes, container_id)


@pytest.fixture
async def executor_id(docker_engine: ContainerEngine) -> AsyncIterator[str]:
    """A fresh executor id; every container labelled with it is force-removed afterwards."""
    name = f"test-{uuid4().hex[:10]}"
    yield name
    async with aiodocker.Docker(url=docker_engine.url) as docker:
        for container in await docker.containers.list(
            all=True, filters={"label": [f"{LABEL_PREFIX}.executor={name}"]}
        ):
            await container.delete(force=True)


LOG_CAP = 4 * MiB


@pytest.fixture
async def backend(docker_engine: ContainerEngine) -> AsyncIterator[DockerBackend]:
    backend = DockerBackend(
        docker_engine.url,
        engine=docker_engine.name,
        kill_grace_seconds=2,
        log_cap_bytes=LOG_CAP,
        watch_interval_seconds=0.2,
    )
    seam: ExecutionBackend = backend  # mypy proves the backend fits the runtime's seam
    yield backend
    await seam.close()


async def _container_exists(docker_engine: ContainerEngine, name: str) -> bool:
    async with aiodocker.Docker(url=docker_engine.url) as docker:
        try:
            await docker.containers.get(name)
        except aiodocker.DockerError as exc:
            assert exc.status == 404
            return False
    return True


async def test_a_job_runs_with_stdout_and_stderr_captured_apart(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path / "ws", "echo to-out; echo to-err >&2", executor_id=executor_id)
    attempt = await backend.launch(spec)
    exit_, stdout, stderr = await _finish(attempt)
    assert exit_ == Exit(0)
    assert (stdout, stderr) == (b"to-out\n", b"to-err\n")
    assert attempt.key == spec.key
    await attempt.remove()


async def test_a_non_zero_exit_code_is_the_jobs_own(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    attempt = await backend.launch(_spec(tmp_path / "ws", "exit 3", executor_id=executor_id))
    exit_, _, _ = await _finish(attempt)
    assert exit_.exit_code == 3 and exit_.failure_reason is None
    assert await attempt.wait() == exit_  # safe to ask again
    await attempt.remove()


async def test_a_job_over_its_memory_limit_fails_as_oom(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    spec = _spec(
        tmp_path / "ws",
        "hog = b'x' * (512 << 20)\nprint('survived')",
        executor_id=executor_id,
        image=PYTHON_IMAGE,
        memory=64 * MiB,
    )
    attempt = await backend.launch(spec)
    exit_, stdout, _ = await _finish(attempt)
    assert exit_.failure_reason is FailureReason.oom, exit_
    assert b"survived" not in stdout
    await attempt.remove()


async def test_stop_ends_a_running_job_with_sigterm_and_leaves_no_process(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    attempt = await backend.launch(_spec(tmp_path / "ws", "sleep 300", executor_id=executor_id))
    await eventually(lambda: _running(attempt.handle), timeout=30, what="the job's process")
    await attempt.stop(grace_seconds=30)
    # 143 = 128 + SIGTERM: the job ended at the first signal, long before the grace ran out
    # (an init as pid 1 forwards it; pid 1 itself would ignore it).
    assert await attempt.wait() == Exit(143, None, "stopped by the executor")
    assert await _gone(attempt.handle)
    await attempt.remove()


async def test_a_job_ignoring_sigterm_is_killed_after_the_grace_and_is_not_called_oom(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    spec = _spec(tmp_path / "ws", "trap '' TERM; echo ready; sleep 300", executor_id=executor_id)
    attempt = await backend.launch(spec)
    output = attempt.output()
    assert await anext(output) == ("stdout", b"ready\n")
    await attempt.stop(grace_seconds=1)
    exit_ = await attempt.wait()
    assert exit_.exit_code == 137 and exit_.failure_reason is None
    assert await _gone(attempt.handle)
    assert [chunk async for chunk in output] == []  # the stream ends with the container
    await attempt.remove()


async def test_a_job_cannot_reach_a_port_on_the_hosts_loopback(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    connections: list[object] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(reader)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        script = f"nc -w 3 127.0.0.1 {port} </dev/null && echo reached || echo unreachable"
        attempt = await backend.launch(_spec(tmp_path / "ws", script, executor_id=executor_id))
        exit_, stdout, _ = await _finish(attempt)
    finally:
        server.close()
        await server.wait_closed()
    assert exit_ == Exit(0)
    assert stdout == b"unreachable\n"
    assert connections == []
    await attempt.remove()


async def test_a_job_is_unprivileged_and_sees_only_its_own_environment(
    backend: DockerBackend, executor_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_TEST_MARKER", "executor-only-value")
    script = (
        "id -u; id -g\n"
        "touch /root-write 2>/dev/null && echo root-writable || echo root-read-only\n"
        "grep CapEff /proc/self/status\n"
        "env; tr '\\0' '\\n' < /proc/1/environ\n"
    )
    spec = _spec(tmp_path / "ws", script, executor_id=executor_id, env={"JOB_VAR": "job-value"})
    attempt = await backend.launch(spec)
    exit_, stdout, _ = await _finish(attempt)
    assert exit_ == Exit(0)
    lines = stdout.decode().splitlines()
    assert lines[:4] == ["65534", "65534", "root-read-only", "CapEff:\t0000000000000000"]
    assert "JOB_VAR=job-value" in lines
    assert b"CONTROLROOM_TEST_MARKER" not in stdout and b"executor-only-value" not in stdout
    assert (tmp_path / "ws").stat().st_uid == JOB_UID
    assert (tmp_path / "ws").stat().st_mode & 0o777 == 0o700
    await attempt.remove()


async def test_a_fork_bomb_is_held_by_the_pids_limit_and_leaves_nothing(
    backend: DockerBackend, executor_id: str, tmp_path: Path, docker_engine: ContainerEngine
) -> None:
    script = "bomb() { bomb | bomb & }; while true; do bomb; done"
    spec = _spec(tmp_path / "ws", script, executor_id=executor_id, pids=32)
    attempt = await backend.launch(spec)
    stderr = bytearray()
    most = 0

    async def watch() -> None:
        nonlocal most
        async for stream, chunk in attempt.output():
            if stream == "stderr":
                stderr.extend(chunk[: 4096 - len(stderr)])
            most = max(most, len(await _running(attempt.handle)))

    watcher = asyncio.create_task(watch())
    try:
        # It may die on its own (busybox sh exits when it cannot fork); if not, we stop it.
        await asyncio.wait_for(asyncio.shield(attempt.wait()), timeout=5)
    except TimeoutError:
        await attempt.stop(grace_seconds=1)
    await asyncio.wait_for(watcher, timeout=30)
    assert b"can't fork" in stderr  # the limit was reached
    assert most <= 32
    assert await _gone(attempt.handle)
    await attempt.remove()
    assert not await _container_exists(docker_engine, spec.key.name())


async def test_a_detached_background_process_ends_with_the_job(
    backend: DockerBackend, executor_id: str, tmp_path: Path, docker_engine: ContainerEngine
) -> None:
    spec = _spec(tmp_path / "ws", "setsid sleep 300 & echo left-behind", executor_id=executor_id)
    attempt = await backend.launch(spec)
    exit_, stdout, _ = await _finish(attempt, timeout=60)
    assert exit_ == Exit(0) and stdout == b"left-behind\n"
    assert await _gone(attempt.handle)
    await attempt.remove()
    assert not await _container_exists(docker_engine, spec.key.name())


async def test_a_gigabyte_of_stdout_streams_through_in_bounded_memory(
    backend: DockerBackend, executor_id: str, tmp_path: Path, docker_engine: ContainerEngine
) -> None:
    size = 1 << 30
    spec = _spec(tmp_path / "ws", f"head -c {size} /dev/zero", executor_id=executor_id)
    baseline = _rss_bytes()
    peak = baseline
    received = 0
    attempt = await backend.launch(spec)
    async with asyncio.timeout(240):
        async for stream, chunk in attempt.output():
            assert stream == "stdout"
            received += len(chunk)
            if received % (16 * MiB) < len(chunk):
                peak = max(peak, _rss_bytes())
        exit_ = await attempt.wait()
    assert exit_ == Exit(0)
    assert received == size
    assert peak - baseline < 64 * MiB, f"grew by {(peak - baseline) >> 20} MiB"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline < 256 * MiB
    async with aiodocker.Docker(url=docker_engine.url) as docker:
        log_path = (await docker.containers.container(attempt.handle).show()).get("LogPath")
    if log_path:  # the engine's own copy is capped (only the live stream had it all)
        assert Path(log_path).stat().st_size <= LOG_CAP + MiB
    await attempt.remove()


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_output_files_are_collected_and_symlinks_are_not_followed(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    script = (
        "mkdir -p output/sub\n"
        "echo alpha > output/a.txt\n"
        "echo beta > output/sub/b.txt\n"
        "ln -s /etc/passwd output/passwd-link\n"
        "ln -s / output/root-link\n"
        "mkfifo output/fifo\n"
    )
    attempt = await backend.launch(_spec(tmp_path / "ws", script, executor_id=executor_id))
    exit_, _, stderr = await _finish(attempt)
    assert exit_ == Exit(0), stderr
    into = tmp_path / "collected"
    await attempt.collect(into)
    found = {str(p.relative_to(into)) for p in into.rglob("*") if not p.is_dir()}
    assert found == {"a.txt", "sub/b.txt"}
    assert (into / "sub" / "b.txt").read_text() == "beta\n"
    await attempt.remove()


async def test_a_new_backend_adopts_a_running_attempt_by_its_labels(
    docker_engine: ContainerEngine, executor_id: str, tmp_path: Path
) -> None:
    script = "echo before; while [ ! -e go ]; do sleep 0.1; done; echo after; exit 4"
    spec = _spec(tmp_path / "ws", script, executor_id=executor_id)
    first = DockerBackend(docker_engine.url, engine=docker_engine.name)
    launched = await first.launch(spec)
    await eventually(lambda: _running(launched.handle), timeout=30, what="the job's process")
    await first.close()  # the executor goes away; the container keeps running

    second = DockerBackend(docker_engine.url, engine=docker_engine.name)
    try:
        adopted = await second.adopt(executor_id)
        assert list(adopted) == [spec.key]
        attempt = adopted[spec.key]
        assert attempt.handle == launched.handle
        (tmp_path / "ws" / "go").touch()
        exit_, stdout, _ = await _finish(attempt)
        assert exit_ == Exit(4)
        assert stdout == b"before\nafter\n"  # replayed from the beginning
        await attempt.remove()
        assert await second.adopt(executor_id) == {}
    finally:
        await second.close()


async def test_an_attempt_left_created_but_never_started_is_adopted_as_an_executor_error(
    backend: DockerBackend, executor_id: str, tmp_path: Path, docker_engine: ContainerEngine
) -> None:
    spec = _spec(tmp_path / "ws", "echo never", executor_id=executor_id)
    body = container_config(spec, log_cap_bytes=LOG_CAP, rlimits=Rlimits())
    async with aiodocker.Docker(url=docker_engine.url) as docker:
        await docker.containers.create(body, name=spec.key.name())
    adopted = await backend.adopt(executor_id)
    attempt = adopted[spec.key]
    assert [chunk async for chunk in attempt.output()] == []
    exit_ = await attempt.wait()
    assert exit_.exit_code is None and exit_.failure_reason is FailureReason.executor_error
    await attempt.remove()
    assert not await _container_exists(docker_engine, spec.key.name())


async def test_egress_gives_the_job_a_network_and_none_gives_it_only_loopback(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    interfaces: dict[str, set[str]] = {}
    for network in ("none", "egress"):
        script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"
        spec = _spec(tmp_path / network, script, executor_id=executor_id, network=network)
        attempt = await backend.launch(spec)
        exit_, stdout, _ = await _finish(attempt)
        assert exit_ == Exit(0)
        interfaces[network] = set(stdout.decode().split())
        await attempt.remove()
    assert interfaces["none"] == {"lo"}
    assert interfaces["egress"] - {"lo"}, interfaces


async def test_a_missing_image_fails_the_launch_as_image_pull(
    backend: DockerBackend, executor_id: str, tmp_path: Path, docker_engine: ContainerEngine
) -> None:
    spec = _spec(tmp_path / "ws", "true", executor_id=executor_id, image="localhost/absent:0")
    with pytest.raises(LaunchFailed) as failed:
        await backend.launch(spec)
    assert failed.value.reason is FailureReason.image_pull
    assert not await _container_exists(docker_engine, spec.key.name())


async def test_a_job_writing_past_its_workspace_limit_is_stopped(
    backend: DockerBackend, executor_id: str, tmp_path: Path
) -> None:
    # Many files, each under the per-file limit (fsize): only the watchdog sees the total.
    script = (
        "i=0; while [ $i -lt 100 ]; do head -c 262144 /dev/zero > f$i; i=$((i+1)); done\n"
        "echo wrote-all; sleep 300"
    )
    spec = _spec(tmp_path / "ws", script, executor_id=executor_id, workspace_bytes=4 * MiB)
    attempt = await backend.launch(spec)
    exit_, _, _ = await _finish(attempt, timeout=60)
    assert exit_.failure_reason is FailureReason.exit_code
    assert exit_.error == f"workspace over its limit of {4 * MiB} bytes"
    await attempt.remove()


def test_a_job_that_wrote_no_output_directory_has_nothing_to_collect(tmp_path: Path) -> None:
    from controlroom_executor_docker.workspace import copy_outputs

    (tmp_path / "main.sh").write_text("true")
    assert copy_outputs(tmp_path, tmp_path / "collected") == 0
