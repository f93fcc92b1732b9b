"""executor-k8s with no cluster configured (none can run here), against real NATS and Postgres."""

from __future__ import annotations

from uuid import uuid4

import pytest

from controlroom_contracts import subjects
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest, JobSpec
from controlroom_contracts.commands import DispatchRun
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_executor_k8s.app import create_app
from controlroom_executor_k8s.settings import ExecutorK8sSettings


async def test_run_routed_without_a_cluster_fails_with_a_clear_error(
    nats_url: str, database_url: str, event_tap: EventTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = ExecutorK8sSettings(nats_url=nats_url, database_url=database_url)
    assert not settings.cluster_configured()
    async with running(create_app(settings)):
        command = DispatchRun(
            tenant_id="t1",
            run_id=uuid4(),
            attempt=1,
            executor_kind="k8s",
            job=JobRequest(
                job_type="spark_etl",
                spec=JobSpec(text="x"),
                code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
                created_by="t",
            ),
        )
        await event_tap.publish(command.dispatch_subject(), command.model_dump_json().encode())
        failed = await event_tap.wait_for(
            subjects.ATTEMPT_FAILED, lambda d: d["run_id"] == str(command.run_id)
        )
        assert failed.data["failure_reason"] == "executor_error"
        assert "no Kubernetes cluster configured" in failed.data["error"]


async def test_malformed_dispatch_is_dead_lettered(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(
        create_app(ExecutorK8sSettings(nats_url=nats_url, database_url=database_url))
    ):
        await event_tap.publish(subjects.dispatch_subject("k8s"), b"[]")
        dead = await event_tap.wait_for(subjects.deadletter_subject("executor-k8s"))
        assert dead.data["original_subject"] == subjects.dispatch_subject("k8s")
