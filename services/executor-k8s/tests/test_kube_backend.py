"""The Kubernetes backend through lightkube against a test double of the API server (the test
plays the scheduler and the kubelet), plus one test against a real cluster when KUBECONFIG is
set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from uuid import uuid4

import pytest

from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason
from controlroom_contracts.routing import ExecutionProfile
from controlroom_devstack.waiting import eventually
from controlroom_executor.backend import (
    AttemptKey,
    AttemptSpec,
    ExecutionBackend,
    Exit,
    LaunchFailed,
    RunningAttempt,
    Stream,
)
from controlroom_executor_k8s import manifests, naming
from controlroom_executor_k8s.kube_backend import KubernetesBackend
from controlroom_executor_k8s.kube_errors import AttemptStillRunning
from controlroom_executor_k8s.settings import ExecutorK8sSettings

if TYPE_CHECKING:
    # mypy names the modules of a directory called "executor-k8s" as top-level ones.
    from kube_api_test_double import Deletion, KubeApiDouble
else:
    from .kube_api_test_double import Deletion, KubeApiDouble

EXECUTOR = "k8s@test-host"
T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float = 10.0) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


def spec_for(
    executor_id: str = EXECUTOR,
    files: list[CodeFile] | None = None,
    env: dict[str, str] | None = None,
    secrets: frozenset[str] = frozenset(),
) -> AttemptSpec:
    return AttemptSpec(
        key=AttemptKey(uuid4(), 1),
        tenant_id="t1",
        job_type="etl",
        executor_id=executor_id,
        code=CodeBundle(files=files or [CodeFile(path="main.py", content="print('hello')\n")]),
        workspace=Path("/nonexistent"),
        command=["python3", "-I", "main.py"],
        env=env or {"CONTROLROOM_RUN_ID": "r"},
        profile=ExecutionProfile(image="python:3.11-slim", commands={".py": ["python3", "-I"]}),
        timeout_seconds=600,
        secrets=secrets,
    )


def settings_for(cluster: KubeApiDouble, **overrides: object) -> ExecutorK8sSettings:
    values: dict[str, object] = {
        "kubeconfig": str(cluster.kubeconfig),
        "k8s_namespace": cluster.namespace,
        "executor_id": EXECUTOR,
        "k8s_stop_timeout_seconds": 10.0,
        **overrides,
    }
    return ExecutorK8sSettings.model_validate(values)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[KubeApiDouble]:
    double = KubeApiDouble()
    await double.start(tmp_path)
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
async def backend(cluster: KubeApiDouble) -> AsyncIterator[KubernetesBackend]:
    backend = KubernetesBackend.from_settings(settings_for(cluster))
    try:
        yield backend
    finally:
        await backend.close()


async def read_all(attempt: RunningAttempt) -> list[tuple[Stream, bytes]]:
    return [chunk async for chunk in attempt.output()]


async def test_launch_creates_the_job_then_its_owned_objects_then_resumes_it(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    seam: ExecutionBackend = backend  # mypy checks it implements the interface
    assert (seam.name, seam.sandboxed, seam.shares_workspace) == ("kubernetes", True, False)
    attempt = await seam.launch(spec_for())
    job = cluster.get("jobs", attempt.handle)
    assert job is not None
    assert job["spec"]["suspend"] is False
    assert job["metadata"]["annotations"][naming.LAUNCHED_ANNOTATION] == "true"
    uid = job["metadata"]["uid"]
    for plural, name in [
        ("configmaps", f"{attempt.handle}-code"),
        ("networkpolicies", f"{attempt.handle}-net"),
    ]:
        owned = cluster.get(plural, name)
        assert owned is not None, (plural, name)
        assert owned["metadata"]["ownerReferences"][0]["uid"] == uid
    creates = [line for line in cluster.journal if line.startswith("create")]
    assert creates[:3] == [
        f"create jobs/{attempt.handle}",
        f"create networkpolicies/{attempt.handle}-net",
        f"create configmaps/{attempt.handle}-code",
    ]
    assert creates[3].startswith(f"create pods/{attempt.handle}-")  # only once resumed


async def test_secret_environment_values_go_to_a_secret_the_job_owns(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    spec = spec_for(env={"API_TOKEN": "tok-987", "MODE": "x"}, secrets=frozenset({"tok-987"}))
    attempt = await backend.launch(spec)
    job = cluster.get("jobs", attempt.handle)
    secret = cluster.get("secrets", f"{attempt.handle}-env")
    assert job is not None and secret is not None
    assert "tok-987" not in str(job)
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert "tok-987" in secret["stringData"].values()


async def test_a_successful_job_streams_its_logs_and_exits_zero(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    reader = asyncio.create_task(read_all(attempt))
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.write_log(pod, "hello\n")
    await cluster.write_log(pod, "world\n")
    await cluster.finish_pod(pod, 0)
    assert await within(attempt.wait()) == Exit(exit_code=0)
    assert await within(attempt.wait()) == Exit(exit_code=0)  # safe to ask again
    assert await within(reader) == [("stdout", b"hello\n"), ("stdout", b"world\n")]
    await attempt.collect(Path("/nonexistent/outputs"))  # copies nothing, documented
    await attempt.remove()
    assert Deletion("jobs", attempt.handle, "Background", None) in cluster.deletions
    assert cluster.names("jobs") == [] and cluster.names("configmaps") == []


async def test_a_failing_job_reports_its_exit_code(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.finish_pod(pod, 3)
    assert await within(attempt.wait()) == Exit(exit_code=3)


async def test_an_oom_killed_container_is_oom(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.oom_kill(pod)
    ended = await within(attempt.wait())
    assert (ended.exit_code, ended.failure_reason) == (137, FailureReason.oom)


async def test_an_image_that_cannot_be_pulled_fails_and_deletes_the_job(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    reader = asyncio.create_task(read_all(attempt))
    pod = await cluster.pod_of(attempt.handle)
    await cluster.image_pull_backoff(pod)
    ended = await within(attempt.wait())
    assert ended.failure_reason is FailureReason.image_pull
    assert ended.exit_code is None
    assert "python:3.11-slim" in (ended.error or "")
    assert Deletion("jobs", attempt.handle, "Foreground", None) in cluster.deletions
    assert cluster.get("jobs", attempt.handle) is None
    assert await within(reader) == []  # the container never started


async def test_a_job_past_its_deadline_is_a_timeout(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    reader = asyncio.create_task(read_all(attempt))
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.write_log(pod, "working\n")
    await cluster.followed(pod)  # the Job controller deletes the pod, and its log, at once
    await cluster.exceed_deadline(attempt.handle)
    ended = await within(attempt.wait())
    assert ended.failure_reason is FailureReason.timeout
    assert "600s" in (ended.error or "")
    assert await within(reader) == [("stdout", b"working\n")]


async def test_a_pod_no_node_takes_fails_as_unschedulable_after_the_configured_time(
    cluster: KubeApiDouble,
) -> None:
    limit = 0.3
    backend = KubernetesBackend.from_settings(
        settings_for(cluster, k8s_unschedulable_after_seconds=limit)
    )
    try:
        attempt = await backend.launch(spec_for())
        pod = await cluster.pod_of(attempt.handle)
        loop = asyncio.get_running_loop()
        await cluster.unschedulable(pod)
        marked = loop.time()
        ended = await within(attempt.wait())
        assert loop.time() - marked >= limit * 0.9  # the clock starts when the watch sees it
        assert ended.failure_reason is FailureReason.unschedulable
        assert "Insufficient memory" in (ended.error or "")
        assert cluster.get("jobs", attempt.handle) is None
    finally:
        await backend.close()


async def test_a_pod_scheduled_in_time_is_not_unschedulable(cluster: KubeApiDouble) -> None:
    backend = KubernetesBackend.from_settings(
        settings_for(cluster, k8s_unschedulable_after_seconds=30)
    )
    try:
        attempt = await backend.launch(spec_for())
        pod = await cluster.pod_of(attempt.handle)
        await cluster.unschedulable(pod)
        await cluster.start_pod(pod)
        await cluster.finish_pod(pod, 0)
        assert await within(attempt.wait()) == Exit(exit_code=0)
    finally:
        await backend.close()


async def test_an_evicted_pod_is_evicted(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.evict(pod)
    ended = await within(attempt.wait())
    assert ended.failure_reason is FailureReason.evicted
    assert "low on resource" in (ended.error or "")


async def test_a_preempted_pod_is_preempted(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.preempt(pod)
    ended = await within(attempt.wait())
    assert ended.failure_reason is FailureReason.preempted


async def test_stop_deletes_the_job_in_the_foreground_and_returns_once_it_is_gone(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    reader = asyncio.create_task(read_all(attempt))
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.write_log(pod, "started\n")
    await cluster.followed(pod)
    await within(attempt.stop(grace_seconds=5))
    assert cluster.deletions[0] == Deletion("jobs", attempt.handle, "Foreground", None)
    assert cluster.get("jobs", attempt.handle) is None
    assert cluster.names("pods") == []
    ended = await within(attempt.wait())
    assert ended.failure_reason is None and ended.exit_code == 143
    assert "stopped" in (ended.error or "")
    assert await within(reader) == [("stdout", b"started\n")]


async def test_stop_deletes_the_pod_with_the_grace_period_and_waits_for_the_job_to_go(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    cluster.hold_garbage_collection = True
    stopping = asyncio.create_task(attempt.stop(grace_seconds=2.5))

    async def pod_deleted() -> bool:
        return Deletion("pods", pod, None, "3") in cluster.deletions

    await eventually(pod_deleted, what="the pod deleted with the grace period, rounded up")
    assert not stopping.done()  # the Job is still there, marked for deletion
    await cluster.collect_garbage()
    await within(stopping)
    assert cluster.get("jobs", attempt.handle) is None


async def test_stop_gives_up_when_the_job_does_not_go(cluster: KubeApiDouble) -> None:
    backend = KubernetesBackend.from_settings(settings_for(cluster, k8s_stop_timeout_seconds=0.2))
    try:
        attempt = await backend.launch(spec_for())
        cluster.hold_garbage_collection = True
        with pytest.raises(AttemptStillRunning):
            await within(attempt.stop(grace_seconds=0))
    finally:
        await backend.close()


async def test_streams_dropped_mid_way_are_followed_again_without_repeating_lines(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    reader = asyncio.create_task(read_all(attempt))
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.write_log(pod, "one\n")
    await cluster.followed(pod)
    await cluster.watched("jobs")
    await cluster.interrupt_logs()
    await cluster.interrupt_watches(abrupt=True)
    await cluster.followed(pod, times=2)  # the reader came back
    await cluster.watched("jobs", times=2)
    await cluster.watched("pods", times=2)
    await cluster.write_log(pod, "two\n")
    await cluster.finish_pod(pod, 0)
    assert await within(attempt.wait()) == Exit(exit_code=0)
    assert await within(reader) == [("stdout", b"one\n"), ("stdout", b"two\n")]


async def test_a_watch_whose_history_is_gone_starts_over_from_a_fresh_read(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    waiting = asyncio.create_task(attempt.wait())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.watched("jobs")
    await cluster.watched("pods")
    # The Job watch has seen nothing since it started; the pod's changes move history on.
    await cluster.start_pod(pod)
    await cluster.interrupt_watches(abrupt=False, compact=True)
    await cluster.watched("jobs", times=2)  # resumed past the 410 Gone, from a new GET
    await cluster.watched("pods", times=2)
    await cluster.finish_pod(pod, 4)
    assert await within(waiting) == Exit(exit_code=4)
    assert "watch-expired jobs" in cluster.journal


async def test_remove_waits_for_the_logs_to_be_read_before_deleting(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    lines = [f"line {i}\n" for i in range(50)]
    await cluster.write_log(pod, "".join(lines))
    await cluster.finish_pod(pod, 0)
    assert await within(attempt.wait()) == Exit(exit_code=0)
    # The reader is asked for before remove() and reads only after remove() was called.
    output = attempt.output()
    removing = asyncio.create_task(attempt.remove())
    # A window to see that something does not happen: remove() waits, nothing is deleted.
    done, _ = await asyncio.wait({removing}, timeout=0.3)
    assert not done
    assert not cluster.deletions
    chunks = await within(_drain(output))
    await within(removing)
    assert chunks == [("stdout", line.encode()) for line in lines]
    journal = cluster.journal
    assert journal.index(f"log-end pods/{pod}") < journal.index(f"delete jobs/{attempt.handle}")


async def test_remove_does_not_wait_for_a_reader_that_was_dropped_unread(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.finish_pod(pod, 0)
    attempt.output()  # never iterated, and gone at once
    await within(attempt.remove(), 5)  # k8s_output_drain_seconds is 30
    assert cluster.get("jobs", attempt.handle) is None


async def _drain(output: AsyncIterator[tuple[Stream, bytes]]) -> list[tuple[Stream, bytes]]:
    return [chunk async for chunk in output]


async def test_a_new_backend_adopts_its_jobs_by_their_labels(cluster: KubeApiDouble) -> None:
    first = KubernetesBackend.from_settings(settings_for(cluster))
    try:
        spec = spec_for()
        attempt = await first.launch(spec)
        other = await first.launch(spec_for(executor_id="k8s@other-host"))
        pod = await cluster.pod_of(attempt.handle)
        await cluster.start_pod(pod)
        await cluster.write_log(pod, "before the restart\n")
    finally:
        await first.close()

    second = KubernetesBackend.from_settings(settings_for(cluster))
    try:
        adopted = await second.adopt(EXECUTOR)
        assert list(adopted) == [spec.key]
        again = adopted[spec.key]
        assert again.handle == attempt.handle != other.handle
        reader = asyncio.create_task(read_all(again))
        await cluster.write_log(pod, "after\n")
        await cluster.finish_pod(pod, 0)
        assert await within(again.wait()) == Exit(exit_code=0)
        assert await within(reader) == [("stdout", b"before the restart\n"), ("stdout", b"after\n")]
    finally:
        await second.close()


async def test_an_adopted_job_left_half_launched_fails_and_is_deleted(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    spec = spec_for()
    # What an executor that stopped between creating the Job and resuming it leaves behind.
    await cluster.create("jobs", manifests.job_manifest(spec, settings_for(cluster)))
    adopted = await backend.adopt(EXECUTOR)
    ended = await within(adopted[spec.key].wait())
    assert ended.failure_reason is FailureReason.executor_error
    assert "never ran" in (ended.error or "")
    assert cluster.names("jobs") == []


async def test_a_job_deleted_by_someone_else_is_lost(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    attempt = await backend.launch(spec_for())
    pod = await cluster.pod_of(attempt.handle)
    await cluster.start_pod(pod)
    await cluster.delete("jobs", attempt.handle, "Background")
    ended = await within(attempt.wait())
    assert ended.failure_reason is FailureReason.lost


async def test_launching_the_same_attempt_twice_fails_without_touching_the_first(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    spec = spec_for()
    await backend.launch(spec)
    with pytest.raises(LaunchFailed) as failed:
        await backend.launch(spec)
    assert failed.value.reason is FailureReason.executor_error
    assert "already exists" in str(failed.value)
    assert cluster.get("jobs", spec.key.name()) is not None


async def test_code_that_cannot_be_shipped_fails_before_anything_is_created(
    backend: KubernetesBackend, cluster: KubeApiDouble
) -> None:
    files = [CodeFile(path=f"blob{i}.txt", content="x" * 400_000) for i in range(3)]
    with pytest.raises(LaunchFailed):
        await backend.launch(spec_for(files=files))
    assert cluster.journal == []


@pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"), reason="no Kubernetes cluster: KUBECONFIG is not set"
)
async def test_a_real_cluster_runs_a_job_and_returns_its_logs_and_exit_code() -> None:
    settings = ExecutorK8sSettings(
        executor_id=f"k8s-test-{uuid4().hex[:8]}",
        k8s_namespace=os.environ.get("CONTROLROOM_K8S_TEST_NAMESPACE", "default"),
        k8s_unschedulable_after_seconds=120,
    )
    image = os.environ.get("CONTROLROOM_K8S_TEST_IMAGE", "busybox:1.36")
    spec = AttemptSpec(
        key=AttemptKey(uuid4(), 1),
        tenant_id="t1",
        job_type="smoke",
        executor_id=settings.identity("k8s"),
        code=CodeBundle(
            files=[
                CodeFile(
                    path="main.sh", content="echo hello from kubernetes\ncat lib/x.txt\nexit 3\n"
                ),
                CodeFile(path="lib/x.txt", content="nested file\n"),
            ]
        ),
        workspace=Path("/nonexistent"),
        command=["sh", "main.sh"],
        env={"GREETING": "hi"},
        profile=ExecutionProfile(image=image, commands={".sh": ["sh"]}, memory="64Mi", cpus=0.1),
        timeout_seconds=300,
    )
    backend = KubernetesBackend.from_settings(settings)
    try:
        attempt = await backend.launch(spec)
        try:
            reader = asyncio.create_task(read_all(attempt))
            ended = await within(attempt.wait(), 280)
            output = b"".join(chunk for _, chunk in await within(reader, 30))
            assert ended == Exit(exit_code=3), ended
            assert b"hello from kubernetes" in output and b"nested file" in output
        finally:
            await attempt.remove()
    finally:
        await backend.close()
