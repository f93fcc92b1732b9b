"""The record of a message a consumer could not process."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now


class DeadLetter(BaseModel):
    """Published on ``controlroom.deadletter.<consumer>`` with the original bytes and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str] = subjects.deadletter_subject("{consumer}")
    record_type: Literal["deadletter"] = "deadletter"
    consumer: str
    original_subject: str
    reason: str
    payload: str = Field(description="The original message body, decoded as UTF-8 with escapes")
    headers: dict[str, str] = Field(default_factory=dict)
    truncated: bool = Field(
        default=False,
        description="The payload is not the original body (cut short, or not UTF-8): "
        "the record can be read but not replayed",
    )
    delivery_count: int = 1
    dead_lettered_at: str = Field(default_factory=lambda: utc_now().isoformat())
