"""The Job and pod states Kubernetes reports, mapped to how the attempt ended (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from controlroom_contracts.api import FailureReason
from controlroom_executor_k8s import pod_status

Obj = dict[str, Any]
MAIN = "job"


def job(condition: str | None = None, reason: str | None = None) -> Obj:
    conditions = []
    if condition:
        conditions.append({"type": condition, "status": "True", "reason": reason or ""})
    return {"spec": {"activeDeadlineSeconds": 600}, "status": {"conditions": conditions}}


def pod(
    phase: str = "Running",
    *,
    main: Obj | None = None,
    init: Obj | None = None,
    reason: str | None = None,
    conditions: list[Obj] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    name: str = "p",
) -> Obj:
    status: Obj = {"phase": phase, "conditions": conditions or []}
    if reason:
        status.update(reason=reason, message=f"{reason} happened")
    if main is not None:
        status["containerStatuses"] = [{"name": MAIN, "image": "img:1", "state": main}]
    if init is not None:
        status["initContainerStatuses"] = [{"name": "copy-code", "image": "img:1", "state": init}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def ended(code: int, reason: str = "Error") -> Obj:
    return {"terminated": {"exitCode": code, "reason": reason}}


def waiting(reason: str) -> Obj:
    return {"waiting": {"reason": reason, "message": f"{reason} for a while"}}


def disruption(reason: str) -> list[Obj]:
    return [{"type": "DisruptionTarget", "status": "True", "reason": reason, "message": "m"}]


FINISHED = [
    # (case, job, pod, exit code, failure reason)
    ("complete", job("Complete"), pod("Succeeded", main=ended(0, "Completed")), 0, None),
    ("complete, pod gone", job("Complete"), None, 0, None),
    ("exit code", job("Failed", "BackoffLimitExceeded"), pod("Failed", main=ended(3)), 3, None),
    (
        "oom",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", main=ended(137, "OOMKilled")),
        137,
        FailureReason.oom,
    ),
    (
        "deadline, pod already killed",
        job("Failed", "DeadlineExceeded"),
        pod("Failed", main=ended(143)),
        143,
        FailureReason.timeout,
    ),
    ("deadline, pod gone", job("Failed", "DeadlineExceeded"), None, None, FailureReason.timeout),
    (
        "evicted by the kubelet",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", reason="Evicted", main=ended(137)),
        137,
        FailureReason.evicted,
    ),
    (
        "preempted",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", conditions=disruption("PreemptionByScheduler"), main=ended(137)),
        137,
        FailureReason.preempted,
    ),
    (
        "preempted, Kubernetes 1.26 reason",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", conditions=disruption("PreemptionByKubeScheduler"), main=ended(137)),
        137,
        FailureReason.preempted,
    ),
    (
        "drained",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", conditions=disruption("EvictionByEvictionAPI"), main=ended(143)),
        143,
        FailureReason.evicted,
    ),
    (
        "node lost",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", conditions=disruption("DeletionByTaintManager")),
        None,
        FailureReason.evicted,
    ),
    (
        "code copy failed",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", init=ended(127)),
        None,
        FailureReason.executor_error,
    ),
    (
        "refused by the node at admission",
        job("Failed", "BackoffLimitExceeded"),
        pod("Failed", reason="OutOfcpu"),
        None,
        FailureReason.unschedulable,
    ),
    ("failed, pod gone", job("Failed", "BackoffLimitExceeded"), None, None, FailureReason.lost),
]


@pytest.mark.parametrize(
    ("job_", "pod_", "code", "reason"),
    [case[1:] for case in FINISHED],
    ids=[case[0] for case in FINISHED],
)
def test_a_finished_job_maps_to_its_exit(
    job_: Obj, pod_: Obj | None, code: int | None, reason: FailureReason | None
) -> None:
    verdict = pod_status.finished(job_, pod_, MAIN)
    assert verdict is not None
    assert (verdict.exit.exit_code, verdict.exit.failure_reason) == (code, reason)
    assert not verdict.stop_job  # it ended by itself
    if reason is not None:
        assert verdict.exit.error


@pytest.mark.parametrize(
    "job_",
    [job(), job("Suspended"), job("FailureTarget", "DeadlineExceeded"), job("SuccessCriteriaMet")],
    ids=["running", "suspended", "failure target only", "success criteria only"],
)
def test_a_job_without_a_terminal_condition_has_not_ended(job_: Obj) -> None:
    assert pod_status.finished(job_, pod(main=ended(0)), MAIN) is None


STUCK = [
    ("ErrImagePull", "init", FailureReason.image_pull),
    ("ImagePullBackOff", "init", FailureReason.image_pull),
    ("ImagePullBackOff", "main", FailureReason.image_pull),
    ("InvalidImageName", "main", FailureReason.image_pull),
    ("ErrImageNeverPull", "main", FailureReason.image_pull),
    ("CreateContainerConfigError", "main", FailureReason.executor_error),
    ("CreateContainerError", "main", FailureReason.executor_error),
]


@pytest.mark.parametrize(("waiting_reason", "container", "reason"), STUCK)
def test_a_container_that_cannot_start_stops_the_job(
    waiting_reason: str, container: str, reason: FailureReason
) -> None:
    state = waiting(waiting_reason)
    stuck_pod = pod("Pending", init=state) if container == "init" else pod("Pending", main=state)
    verdict = pod_status.stuck(stuck_pod)
    assert verdict is not None
    assert verdict.stop_job
    assert verdict.exit == verdict.exit.__class__(None, reason, verdict.exit.error)
    assert waiting_reason in (verdict.exit.error or "")


@pytest.mark.parametrize(
    "waiting_reason", ["ContainerCreating", "PodInitializing", "CrashLoopBackOff"]
)
def test_ordinary_waiting_is_not_stuck(waiting_reason: str) -> None:
    assert pod_status.stuck(pod("Pending", main=waiting(waiting_reason))) is None


def scheduled(status: str, reason: str | None = None) -> list[Obj]:
    return [{"type": "PodScheduled", "status": status, "reason": reason or "", "message": "0/3"}]


@pytest.mark.parametrize(
    ("pod_", "unplaced"),
    [
        (None, True),
        (pod("Pending", conditions=scheduled("False", "Unschedulable")), True),
        (pod("Pending", conditions=scheduled("False", "SchedulingGated")), True),
        (pod("Pending", conditions=scheduled("False", "SchedulerError")), False),
        (pod("Pending", conditions=scheduled("True")), False),
        (pod("Pending"), False),
        (pod("Running", conditions=scheduled("True")), False),
    ],
    ids=[
        "no pod",
        "unschedulable",
        "gated",
        "scheduler error",
        "scheduled",
        "just created",
        "running",
    ],
)
def test_unplaced_pods(pod_: Obj | None, unplaced: bool) -> None:
    assert (pod_status.unplaced(pod_) is not None) is unplaced


@pytest.mark.parametrize(
    ("pod_", "started", "done"),
    [
        (pod("Pending"), False, False),
        (pod("Pending", main=waiting("ContainerCreating")), False, False),
        (pod("Running", main={"running": {}}), True, False),
        (pod("Succeeded", main=ended(0, "Completed")), True, True),
        (pod("Failed", reason="Evicted"), False, True),
    ],
)
def test_container_started_and_done(pod_: Obj, started: bool, done: bool) -> None:
    assert pod_status.container_started(pod_, MAIN) is started
    assert pod_status.container_done(pod_, MAIN) is done


def test_the_newest_pod_is_the_one_that_counts() -> None:
    old = pod(created="2026-01-01T00:00:00Z", name="a")
    new = pod(created="2026-01-01T00:00:05Z", name="b")
    assert pod_status.newest({"a": old, "b": new}) is new
    assert pod_status.newest({}) is None


def test_long_messages_are_clipped() -> None:
    long_pod = pod("Failed", reason="Evicted", main=ended(137))
    long_pod["status"]["message"] = "x" * 5000
    verdict = pod_status.finished(job("Failed", "BackoffLimitExceeded"), long_pod, MAIN)
    assert verdict is not None and len(verdict.exit.error or "") <= 500
