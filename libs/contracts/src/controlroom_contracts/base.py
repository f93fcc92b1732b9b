"""The envelope every message shares: identity, time, tenant, schema version, subject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """A message on NATS. Unknown fields are ignored so old consumers accept newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: ClassVar[str]
    """The NATS subject the message travels on (a template for per-kind subjects)."""

    event_id: UUID = Field(default_factory=uuid4, description="Unique id; Nats-Msg-Id on publish")
    occurred_at: datetime = Field(default_factory=utc_now)
    schema_version: int = Field(default=1, ge=1)
    tenant_id: str = Field(min_length=1, max_length=128)


class Event(Message):
    """Something that happened (past tense)."""


class Command(Message):
    """Something a service is asked to do (imperative)."""


class RunMessage(Message):
    """A message about one run."""

    run_id: UUID
