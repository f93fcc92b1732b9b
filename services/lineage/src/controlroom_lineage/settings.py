from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from controlroom_runtime.settings import ServiceSettings


class LineageSettings(ServiceSettings):
    service_key: ClassVar[str] = "LINEAGE"

    port: int = 8793

    # OpenLineage out: our own runs as RunEvents to a catalogue (Marquez, ...).
    openlineage_url: str | None = Field(
        default=None,
        description="Base URL of an OpenLineage HTTP receiver (e.g. a Marquez); unset: nothing "
        "is sent. CONTROLROOM_OPENLINEAGE_URL",
    )
    openlineage_endpoint: str = Field(
        default="api/v1/lineage",
        description="Joined to the URL as openlineage-python's HTTP transport does (urljoin)",
    )
    openlineage_api_key: SecretStr | None = Field(
        default=None, description="Sent as 'Authorization: Bearer <key>' when set"
    )
    openlineage_namespace: str = Field(
        default="controlroom",
        min_length=1,
        description="Our jobs' namespace is '<this>/<tenant_id>': tenants never collide",
    )
    openlineage_timeout_seconds: float = Field(default=10.0, gt=0)
    openlineage_retention_days: int = Field(
        default=7, gt=0, description="Delivered or refused events are deleted after this"
    )

    @field_validator("openlineage_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None  # CONTROLROOM_OPENLINEAGE_URL="" turns it off
        if not value.startswith(("http://", "https://")):
            raise ValueError("CONTROLROOM_OPENLINEAGE_URL must be an http(s) URL")
        return value
