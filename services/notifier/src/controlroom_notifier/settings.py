"""Notifier settings, from ``CONTROLROOM_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from controlroom_runtime.settings import ServiceSettings

# base64("controlroom-development-webhook-secret"); refused outside development.
DEVELOPMENT_SECRET = "whsec_Y29udHJvbHJvb20tZGV2ZWxvcG1lbnQtd2ViaG9vay1zZWNyZXQ="


class NotifierSettings(ServiceSettings):
    service_key: ClassVar[str] = "NOTIFIER"

    port: int = 8794
    webhook_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET),
        description="Standard Webhooks signing secret (whsec_<base64>)",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Each step of a delivery: connect, send, each read"
    )
    webhook_deadline_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A whole delivery, from resolving the host to the last byte read; a "
        "receiver that trickles its answer is cut off here",
    )
    webhook_max_response_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Most of a receiver's answer read; only its status code matters",
    )
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_max_backoff_seconds: float = Field(default=300.0, gt=0)
    delivery_poll_interval_seconds: float = Field(default=1.0, gt=0)
    callback_allowlist: list[str] = Field(
        default_factory=list,
        description="CIDRs or hosts callbacks may reach although private or loopback",
    )
    delivery_concurrency: int = Field(
        default=16, ge=1, description="Deliveries in flight at once (the worker pool's size)"
    )
    delivery_tenant_concurrency: int = Field(
        default=4,
        ge=1,
        description="Deliveries of one tenant in flight at once, so that a tenant's slow "
        "receivers never hold every worker",
    )

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> NotifierSettings:
        if (
            self.env == "production"
            and self.webhook_secret.get_secret_value() == DEVELOPMENT_SECRET
        ):
            raise ValueError("set CONTROLROOM_WEBHOOK_SECRET in production")
        return self
