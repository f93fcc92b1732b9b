from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_runtime.settings import ServiceSettings


def _base_python() -> str:
    # The interpreter without this service's virtualenv: jobs must not import our packages.
    return str(Path(sys.base_prefix) / "bin" / "python3")


class ExecutorDockerSettings(ServiceSettings):
    service_key: ClassVar[str] = "EXECUTOR_DOCKER"

    port: int = 8791
    executor_id: str = Field(default_factory=lambda: f"docker@{socket.gethostname()}")
    backend: Literal["local"] = Field(
        default="local",
        description="local: unsandboxed local processes (dev mode). The Docker-API container "
        "backend plugs in here later.",
    )
    executor_capacity: int = Field(default=4, ge=1, le=256, description="Runs executed at once")
    executor_workdir: Path = Field(default=Path(".controlroom/work"))
    job_python: str = Field(default_factory=_base_python)
    job_memory_limit_bytes: int = Field(default=2 << 30, ge=64 << 20)
    job_max_output_bytes: int = Field(default=1 << 30, description="Largest file a job may write")
    job_log_tail_bytes: int = Field(default=8192, description="stderr kept in a failed run's error")
    object_store: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    max_artifact_bytes: int = Field(default=50 << 20, description="Largest output file kept")
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)
    keep_workdirs: bool = Field(default=False, description="Keep code dirs after a run ends")
