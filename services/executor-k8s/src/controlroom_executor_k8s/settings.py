from __future__ import annotations

import os
import socket
from typing import ClassVar

from pydantic import Field

from controlroom_runtime.settings import ServiceSettings


class ExecutorK8sSettings(ServiceSettings):
    service_key: ClassVar[str] = "EXECUTOR_K8S"

    port: int = 8792
    executor_id: str = Field(default_factory=lambda: f"k8s@{socket.gethostname()}")
    kubeconfig: str | None = Field(
        default_factory=lambda: os.environ.get("KUBECONFIG"),
        description="Path of a kubeconfig; KUBECONFIG is read when this is unset",
    )
    k8s_namespace: str = "controlroom-runs"
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)

    def cluster_configured(self) -> bool:
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        return bool(self.kubeconfig) or in_cluster
