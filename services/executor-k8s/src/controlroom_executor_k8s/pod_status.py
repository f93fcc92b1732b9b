"""How a Job and its pod ended, as an :class:`Exit` (pure functions over the API's JSON).

The Job's terminal condition decides *whether* the attempt has ended (a pod that failed
because the Job's deadline passed looks like any killed pod; only the Job says
``DeadlineExceeded``); the pod says *how*. Two states never end by themselves and are decided
from the pod alone, with the Job to be stopped: an image that cannot be pulled and a container
that cannot be created. A pod that no node takes is timed by the caller (:func:`unplaced`).

Reasons, as Kubernetes documents them:

- container ``state.waiting.reason``: ``ErrImagePull``, ``ImagePullBackOff``,
  ``InvalidImageName``, ``ErrImageNeverPull`` -> ``image_pull``; ``CreateContainerConfigError``,
  ``CreateContainerError`` -> ``executor_error``;
- container ``state.terminated.reason`` ``OOMKilled`` -> ``oom``;
- Job condition ``Failed`` with reason ``DeadlineExceeded`` -> ``timeout``;
- pod condition ``PodScheduled`` False with reason ``Unschedulable`` (or ``SchedulingGated``)
  -> ``unschedulable`` once it lasts; a pod a node refused at admission (phase ``Failed``,
  ``status.reason`` such as ``OutOfcpu`` or ``NodeAffinity``, no container ran) too;
- pod ``status.reason`` ``Evicted`` (node pressure) -> ``evicted``;
- pod condition ``DisruptionTarget`` True: reason ``PreemptionByScheduler`` (called
  ``PreemptionByKubeScheduler`` before Kubernetes 1.27) -> ``preempted``; ``EvictionByEvictionAPI``
  (a drain), ``DeletionByTaintManager`` (the node went away), ``DeletionByPodGC``,
  ``TerminationByKubelet`` -> ``evicted``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import Exit

Json = Mapping[str, Any]

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
CREATE_CONTAINER_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
PREEMPTION_REASONS = frozenset({"PreemptionByScheduler", "PreemptionByKubeScheduler"})
UNPLACED_REASONS = frozenset({"Unschedulable", "SchedulingGated"})
_MESSAGE_MAX = 500


@dataclass(frozen=True)
class Verdict:
    exit: Exit
    stop_job: bool = False
    """The Job would never end by itself (an image that cannot be pulled, no node): delete it."""


def finished(job: Json, pod: Json | None, main_container: str) -> Verdict | None:
    """How a Job with a terminal condition ended, or None while it has none."""
    conditions = _true_conditions(job.get("status"))
    if "Complete" in conditions:
        terminated = _terminated(pod, main_container)
        code = terminated.get("exitCode", 0) if terminated else 0
        return Verdict(Exit(exit_code=code))
    failed = conditions.get("Failed")
    if failed is None:
        return None
    if failed.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        terminated = _terminated(pod, main_container)
        return Verdict(
            Exit(
                exit_code=terminated.get("exitCode") if terminated else None,
                failure_reason=FailureReason.timeout,
                error=f"the attempt ran past its {deadline}s deadline (Job DeadlineExceeded)",
            )
        )
    from_pod = pod_failure(pod, main_container) if pod is not None else None
    if from_pod is not None:
        return Verdict(from_pod)
    return Verdict(
        Exit(
            exit_code=None,
            failure_reason=FailureReason.lost,
            error=_clip(
                f"the Job failed ({failed.get('reason')}: {failed.get('message', '')}) "
                "and its pod is gone, so how it ended is unknown"
            ),
        )
    )


def pod_failure(pod: Json, main_container: str) -> Exit | None:
    """How a failed pod ended: disruption, eviction, a failed code copy, OOM or exit code."""
    status = pod.get("status") or {}
    terminated = _terminated(pod, main_container)
    code = terminated.get("exitCode") if terminated else None
    disruption = _true_conditions(status).get("DisruptionTarget")
    if disruption is not None and disruption.get("reason") in PREEMPTION_REASONS:
        return Exit(code, FailureReason.preempted, _explain("preempted", disruption))
    if status.get("reason") == "Evicted":
        return Exit(code, FailureReason.evicted, _explain("evicted", status))
    if disruption is not None:
        return Exit(code, FailureReason.evicted, _explain("disrupted", disruption))
    for init in status.get("initContainerStatuses") or []:
        init_end = (init.get("state") or {}).get("terminated") or {}
        if init_end.get("exitCode", 0) != 0:
            return Exit(
                None,
                FailureReason.executor_error,
                _clip(
                    f"copying the code into /workspace failed (init container exited "
                    f"{init_end['exitCode']}, {init_end.get('reason', '')}: "
                    f"{init_end.get('message', '')}); the image needs `cp`"
                ),
            )
    if terminated:
        if terminated.get("reason") == "OOMKilled":
            return Exit(code, FailureReason.oom, "the container ran out of memory (OOMKilled)")
        return Exit(exit_code=code)
    if status.get("phase") == "Failed" and status.get("reason"):
        # The node refused the pod at admission (OutOfcpu, NodeAffinity...): nothing ran.
        return Exit(None, FailureReason.unschedulable, _explain("refused by its node", status))
    return None


def stuck(pod: Json) -> Verdict | None:
    """A container that waits for something that will not come: an image, a valid config."""
    for container in _statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        detail = f"{reason}: {waiting.get('message', '')}"
        if reason in IMAGE_PULL_REASONS:
            image = container.get("image", "")
            error = _clip(f"image {image!r} cannot be pulled ({detail})")
            return Verdict(Exit(None, FailureReason.image_pull, error), stop_job=True)
        if reason in CREATE_CONTAINER_REASONS:
            error = _clip(f"the container cannot be created ({detail})")
            return Verdict(Exit(None, FailureReason.executor_error, error), stop_job=True)
    return None


def unplaced(pod: Json | None) -> str | None:
    """Why the attempt is not on a node yet, or None when it is (or is past that)."""
    if pod is None:
        return (
            "the Job controller created no pod (a ResourceQuota, LimitRange or admission "
            "policy may refuse it: see the Job's events)"
        )
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    scheduled = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None
    )
    if scheduled is None or scheduled.get("status") != "False":
        return None
    if scheduled.get("reason") not in UNPLACED_REASONS:
        return None
    detail = f"{scheduled['reason']}: {scheduled.get('message', '')}"
    return _clip(f"no node can take the pod ({detail})")


def container_started(pod: Json | None, name: str) -> bool:
    """True once the container runs or has run (its logs can be read)."""
    for container in _statuses(pod):
        if container.get("name") == name:
            state = container.get("state") or {}
            return "running" in state or "terminated" in state
    return False


def container_done(pod: Json | None, name: str) -> bool:
    return bool(_terminated(pod, name)) or (
        pod is not None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    )


def newest(pods: Mapping[str, Json]) -> Json | None:
    """The most recently created pod (a Job with ``backoffLimit: 0`` normally has one)."""
    if not pods:
        return None
    return max(
        pods.values(),
        key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or "", _name(p)),
    )


def _name(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _statuses(pod: Json | None) -> Iterator[Json]:
    if pod is None:
        return
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def _terminated(pod: Json | None, name: str) -> Json:
    if pod is None:
        return {}
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == name:
            return dict((container.get("state") or {}).get("terminated") or {})
    return {}


def _true_conditions(status: Json | None) -> dict[str, Json]:
    conditions = (status or {}).get("conditions") or []
    return {c["type"]: c for c in conditions if c.get("status") == "True" and "type" in c}


def _explain(what: str, source: Json) -> str:
    return _clip(f"the pod was {what} ({source.get('reason', '')}: {source.get('message', '')})")


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"
