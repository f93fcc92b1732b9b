"""Executors announcing themselves: a plain NATS message every few seconds, never persisted."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now


class HeldAttempt(BaseModel):
    """An attempt an executor holds (claimed and not yet reported finished)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: str
    run_id: UUID
    attempt: int = Field(ge=1)


class ExecutorHeartbeat(BaseModel):
    """An executor replica is alive: its kind, capacity and how many runs it has now.

    Not tenant-scoped: executors serve every tenant.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.EXECUTOR_HEARTBEAT
    event_type: str = "executor.heartbeat"
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=utc_now)
    schema_version: int = 1
    executor_id: str = Field(min_length=1, max_length=256)
    kind: str = Field(min_length=1, max_length=64)
    capacity: int = Field(ge=0)
    running: int = Field(ge=0)
    ready: bool = Field(description="False when the executor cannot run anything (no cluster)")
    started_at: datetime
    attempts: list[HeldAttempt] = Field(
        default_factory=list,
        description="Every attempt it holds now: the scheduler's evidence that they are alive",
    )


class ExecutorView(BaseModel):
    """One row of ``GET /api/v1/executors``."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    capacity: int
    running: int
    ready: bool
    last_heartbeat: datetime
    stale: bool = Field(description="No heartbeat in the last 30 s")
