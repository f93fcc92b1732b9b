"""The routing matrix at work: each dispatch carries its route's execution profile, and a job
that gives no timeout or retry policy gets its route's (against a real nats-server and Postgres)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom_contracts import subjects
from controlroom_contracts.api import RetryPolicy
from controlroom_devstack.pytest_plugin import running
from controlroom_runtime.routing_file import RoutingFileError
from controlroom_scheduler.app import create_app

from .conftest import Rig

MATRIX = """
job_types:
  diagram_export:
    executor: k8s            # the embedded profile sends it to docker all the same
    image: example.org/diagrams:7
    commands: {".py": ["python3", "-I"]}
    memory: 768Mi
    cpus: 0.5
    pids: 64
    tmp: 32Mi
    workspace: 100M
    timeout_seconds: 45
    retry: {max_attempts: 5, retry_on_timeout: true}
  kb_catalog:
    executor: docker
    image: example.org/catalog:1
    commands: {".sh": ["sh"]}
    timeout_seconds: 86400   # above the deployment's maximum: capped
"""


@pytest.fixture
def routing_file(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(MATRIX)
    return path


@pytest.mark.usefixtures("executor")
async def test_dispatch_carries_the_routes_profile_and_its_default_timeout_and_retry(
    rig: Rig, routing_file: Path
) -> None:
    async with running(create_app(rig.settings(routing_file=routing_file))):
        event = rig.submitted("diagram_export")
        await rig.publish(event)
        dispatch = await rig.tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(event.run_id)
        )
        assert dispatch.data["execution"] == {
            "image": "example.org/diagrams:7",
            "commands": {".py": ["python3", "-I"]},
            "memory_bytes": 768 << 20,
            "cpus": 0.5,
            "pids": 64,
            "tmp_bytes": 32 << 20,
            "workspace_bytes": 100_000_000,
            "network": "none",
        }
        assert dispatch.data["timeout_seconds"] == 45
        queued = await rig.decided(subjects.RUN_QUEUED, event.run_id)
        assert queued.data["max_attempts"] == 5 and queued.data["timeout_seconds"] == 45


@pytest.mark.usefixtures("executor")
async def test_the_jobs_own_timeout_and_retry_win_and_a_routes_timeout_is_capped(
    rig: Rig, routing_file: Path
) -> None:
    async with running(create_app(rig.settings(routing_file=routing_file))):
        own = rig.submitted("diagram_export", timeout_seconds=30, retry=RetryPolicy(max_attempts=2))
        capped = rig.submitted("kb_catalog")
        await rig.publish(own)
        await rig.publish(capped)
        queued = await rig.decided(subjects.RUN_QUEUED, own.run_id)
        assert queued.data["max_attempts"] == 2 and queued.data["timeout_seconds"] == 30
        queued = await rig.decided(subjects.RUN_QUEUED, capped.run_id)
        assert queued.data["timeout_seconds"] == 3600  # max_timeout_seconds
        assert queued.data["max_attempts"] == 3  # the route has no retry: the default rule
        dispatch = await rig.tap.wait_for(
            subjects.dispatch_subject("docker"), lambda d: d["run_id"] == str(capped.run_id)
        )
        assert dispatch.data["execution"]["image"] == "example.org/catalog:1"


def test_production_profile_routes_as_the_file_says_and_overrides_set_kinds(
    rig: Rig, routing_file: Path
) -> None:
    settings = rig.settings(routing_file=routing_file, routing_profile="production")
    routing = settings.routing()
    assert {n: r.executor for n, r in routing.job_types.items()} == {
        "diagram_export": "k8s",
        "kb_catalog": "docker",
    }
    overridden = rig.settings(routing_file=routing_file, routes={"kb_catalog": "bench"})
    assert {n: r.executor for n, r in overridden.routing().job_types.items()} == {
        "diagram_export": "docker",
        "kb_catalog": "bench",
    }


def test_a_bad_routing_file_stops_the_scheduler_before_it_starts(rig: Rig, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MATRIX.replace("memory: 768Mi", "memory: lots"))
    with pytest.raises(RoutingFileError) as raised:
        create_app(rig.settings(routing_file=bad))
    assert str(bad) in str(raised.value)
    assert raised.value.fields == ["job_types.diagram_export.memory"]


def test_an_override_for_a_job_type_the_file_lacks_is_refused(rig: Rig, routing_file: Path) -> None:
    with pytest.raises(RoutingFileError, match="CONTROLROOM_ROUTES.spark_etl"):
        create_app(rig.settings(routing_file=routing_file, routes={"spark_etl": "k8s"}))
