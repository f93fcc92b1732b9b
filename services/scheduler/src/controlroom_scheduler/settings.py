from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from controlroom_runtime.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    service_key: ClassVar[str] = "SCHEDULER"

    port: int = 8790
    routing_profile: Literal["embedded", "production"] = Field(
        default="embedded",
        description="embedded: every job type runs on executor-docker (no cluster exists); "
        "production: the constitution's table (seed 002, section 4)",
    )
    routes: dict[str, str] = Field(
        default_factory=dict,
        description='Per-job-type overrides, JSON: {"spark_etl": "k8s"}',
    )
    run_timeout_seconds: int = Field(default=600, ge=1)
