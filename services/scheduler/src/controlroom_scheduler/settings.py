from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from controlroom_runtime.routing_file import RoutingSettings
from controlroom_runtime.run_policy import RunPolicySettings
from controlroom_runtime.settings import ServiceSettings


class SchedulerSettings(ServiceSettings, RunPolicySettings, RoutingSettings):
    service_key: ClassVar[str] = "SCHEDULER"

    port: int = 8790
    tenant_max_concurrent: int = Field(
        default=10, ge=1, description="Runs a tenant may have dispatched or running at once"
    )
    tenant_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Per-tenant overrides, JSON: {"acme": 50} or {"acme": '
        '{"max_concurrent_runs": 50}}',
    )
    aging_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Every this many seconds waiting raises a queued run's priority one step",
    )
    dispatch_batch: int = Field(default=1000, ge=1, description="Most runs admitted per pass")
    dispatch_interval_seconds: float = Field(
        default=1.0, gt=0, description="A pass at least this often, besides those events trigger"
    )
    sweep_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often deadlines, liveness and cancellations are checked"
    )
    executor_silence_seconds: float = Field(
        default=15.0, gt=0, description="An executor silent this long has lost its attempts"
    )
    deadline_grace_seconds: float = Field(
        default=30.0, ge=0, description="Past an attempt's timeout, how long to await its report"
    )
    cancel_grace_seconds: float = Field(
        default=10.0, ge=0, description="How long an executor has to confirm a cancellation"
    )
    schedule_tick_seconds: float = Field(
        default=1.0, gt=0, description="How often schedules are checked for a tick due"
    )
    schedule_batch: int = Field(default=100, ge=1, description="Most schedules ticked per pass")
    template_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long a tick waits for the gateway's template job; unanswered, the "
        "tick stays due and is asked for again",
    )

    @field_validator("tenant_limits", mode="before")
    @classmethod
    def _limits(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                tenant: limit.get("max_concurrent_runs") if isinstance(limit, dict) else limit
                for tenant, limit in value.items()
            }
        return value
