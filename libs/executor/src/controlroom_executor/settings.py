"""Settings every executor reads (mixed into each executor service's settings)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from pydantic import Field, SecretStr

from controlroom_contracts.routing import ExecutionProfile
from controlroom_executor.checkout import CheckoutSettings
from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_runtime.routing_file import RoutingSettings


class ExecutorSettings(RoutingSettings):
    executor_id: str | None = Field(
        default=None,
        max_length=128,
        description="This executor's identity, stable across restarts: it finds the attempts "
        "it started by it. Unset: an id made once and kept in "
        "<executor_workdir>/<kind>.executor_id",
    )
    executor_capacity: int = Field(default=4, ge=1, le=256, description="Attempts at once")
    executor_workdir: Path = Field(default=Path(".controlroom/work"))
    log_cap_bytes: int = Field(
        default=10 << 20, ge=1024, description="Per stream; the rest is counted, not kept"
    )
    kill_grace_seconds: float = Field(
        default=5.0, ge=0, le=300, description="Between SIGTERM and SIGKILL at timeout and cancel"
    )
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)
    keep_workdirs: bool = Field(default=False, description="Keep attempt directories after a run")
    object_store: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    max_artifact_bytes: int = Field(default=50 << 20, description="Largest output file kept")
    job_secrets: dict[str, dict[str, SecretStr]] = Field(
        default_factory=dict,
        description="Environment variables given to jobs and redacted from everything stored, "
        'per tenant ("*" for every tenant): {"acme": {"API_TOKEN": "..."}}',
    )

    checkout: CheckoutSettings = Field(
        default_factory=CheckoutSettings,
        description="How a job's repository is checked out (CONTROLROOM_CHECKOUT__TIMEOUT_SECONDS, "
        "__MAX_BYTES, __CREDENTIALS as JSON {host: token}, __SSH_KEY_FILE, ...)",
    )

    def identity(self, kind: str) -> str:
        """The configured id, or the one kept in the work directory (made on first start)."""
        if self.executor_id:
            return self.executor_id
        path = self.executor_workdir / f"{kind}.executor_id"
        if path.is_file() and (kept := path.read_text().strip()):
            return kept
        made = f"{kind}-{uuid.uuid4().hex[:12]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(made + "\n")
        return made

    def profile_for(self, job_type: str) -> ExecutionProfile | None:
        """The routing matrix's profile: for a dispatch that carries none (an older producer)."""
        route = self.routing().route(job_type)
        return None if route is None else route.profile()

    def secrets_for(self, tenant_id: str) -> dict[str, str]:
        merged = {**self.job_secrets.get("*", {}), **self.job_secrets.get(tenant_id, {})}
        return {
            name: value.get_secret_value()
            for name, value in merged.items()
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name)
        }
