"""Settings every service shares, read from ``CONTROLROOM_*`` environment variables."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def asyncpg_url(url: str) -> str:
    """Accept plain ``postgresql://`` DSNs and point them at the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class ServiceSettings(BaseSettings):
    """Common settings. A service subclass sets ``service_key`` and its default ``port``.

    ``CONTROLROOM_<SERVICE>_DATABASE_URL`` (e.g. ``CONTROLROOM_LINEAGE_DATABASE_URL``) points one
    service at its own database; otherwise ``CONTROLROOM_DATABASE_URL`` is used.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONTROLROOM_", extra="ignore", env_nested_delimiter="__"
    )

    service_key: ClassVar[str] = ""

    env: Literal["development", "production"] = "development"
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/controlroom"
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    outbox_relay_interval_seconds: float = 1.0
    outbox_stall_seconds: float = 60.0
    """``/readyz`` fails while a message older than this waits in the outbox to be published."""
    db_pool_size: int = 10
    inbox_retention_days: float = 35.0
    """How long a handled event's id is kept to drop its duplicates: longer than any way a copy
    can come back (JetStream redelivers for up to 7 days; a dead letter can be replayed for
    30)."""
    retention_interval_seconds: float = 600.0
    """How often each service deletes what is past its horizon."""
    run_retention_days: float = Field(default=90.0, gt=0)
    """A run that ended this long ago expires: the gateway answers 404 for it, its history and
    its artifacts, and leaves it out of listings and counts."""
    run_purge_grace_days: float = Field(default=7.0, ge=0)
    """How long after it expired a run is deleted: by the gateway with its history, artifacts
    and their stored objects; by the scheduler, notifier and executors with their rows of it."""

    @model_validator(mode="before")
    @classmethod
    def _service_overrides(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.service_key:
            return data
        for field in ("database_url", "port"):
            value = os.environ.get(f"CONTROLROOM_{cls.service_key}_{field.upper()}")
            if value is not None:  # the more specific variable wins
                data[field] = value
        return data

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        return asyncpg_url(value)
