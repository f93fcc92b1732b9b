"""Run policy both the gateway (to refuse a bad request) and the scheduler (to apply it) read:
the lanes and the timeout limits, from the same environment variables."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controlroom_contracts.api import LANE_PATTERN


class LaneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(default=1.0, gt=0, le=1000, description="Share of a tenant's turns")
    max_concurrent_runs: int | None = Field(
        default=None, ge=1, description="Per tenant; null: only the tenant's own cap applies"
    )


def _default_lanes() -> dict[str, LaneConfig]:
    return {lane: LaneConfig() for lane in ("A", "B", "C", "D")}


class RunPolicySettings(BaseModel):
    """Mixed into a service's settings (``CONTROLROOM_LANES``, ``..._TIMEOUT_SECONDS``)."""

    lanes: dict[str, LaneConfig] = Field(
        default_factory=_default_lanes,
        description='JSON: {"A": {"weight": 2, "max_concurrent_runs": 5}, "B": {}}; the first '
        "lane is the default",
    )
    default_timeout_seconds: int = Field(default=600, ge=1)
    max_timeout_seconds: int = Field(default=3600, ge=1)

    @field_validator("lanes")
    @classmethod
    def _lane_names(cls, lanes: dict[str, LaneConfig]) -> dict[str, LaneConfig]:
        if not lanes:
            raise ValueError("at least one lane is needed")
        for name in lanes:
            if not re.match(LANE_PATTERN, name):
                raise ValueError(f"lane name {name!r} must match {LANE_PATTERN}")
        return lanes

    @model_validator(mode="after")
    def _default_within_max(self) -> RunPolicySettings:
        if self.default_timeout_seconds > self.max_timeout_seconds:
            raise ValueError("default_timeout_seconds is above max_timeout_seconds")
        return self

    @property
    def default_lane(self) -> str:
        return next(iter(self.lanes))
