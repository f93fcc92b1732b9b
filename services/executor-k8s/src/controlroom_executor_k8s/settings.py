from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import Field

from controlroom_executor.settings import ExecutorSettings
from controlroom_runtime.settings import ServiceSettings


class ExecutorK8sSettings(ServiceSettings, ExecutorSettings):
    service_key: ClassVar[str] = "EXECUTOR_K8S"

    port: int = 8792
    kubeconfig: str | None = Field(
        default_factory=lambda: os.environ.get("KUBECONFIG"),
        description="Path of a kubeconfig; KUBECONFIG is read when this is unset",
    )
    k8s_namespace: str = "controlroom-runs"
    k8s_ttl_seconds_after_finished: int = Field(
        default=86_400,
        ge=0,
        description="Kubernetes deletes a finished Job (and its pod, code and policy) this long "
        "after it ended, should the executor not have removed it; long enough to re-adopt it and "
        "read its logs after an executor outage",
    )
    k8s_unschedulable_after_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An attempt whose pod is not placed on a node for this long fails as "
        "unschedulable (its Job is deleted)",
    )
    k8s_termination_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="terminationGracePeriodSeconds of every pod: SIGTERM, then SIGKILL after it",
    )
    k8s_stop_timeout_seconds: float = Field(
        default=25.0,
        gt=0,
        description="How long stop() waits, beyond the grace period, for the Job and its pod to "
        "go (the executor runtime bounds stop() at grace + 30 s)",
    )
    k8s_output_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long remove() waits for output() to finish reading the logs",
    )
    k8s_init_image: str | None = Field(
        default=None,
        description="Image of the init container that copies the code into /workspace (it "
        "needs `cp`); the job's own image when unset",
    )
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    def cluster_configured(self) -> bool:
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        return bool(self.kubeconfig) or in_cluster
