from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from controlroom_contracts.api import KNOWN_JOB_TYPES
from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_runtime.routing_file import RoutingSettings
from controlroom_runtime.run_policy import RunPolicySettings
from controlroom_runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings, RunPolicySettings, RoutingSettings):
    service_key: ClassVar[str] = "GATEWAY"

    port: int = 8789
    jwt_secret: SecretStr = Field(description="HS256 secret for bearer tokens (required)")
    jwt_jwks_url: str | None = Field(
        default=None, description="Also accept RS256 tokens signed by a key at this JWKS URL"
    )
    token_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    job_types: list[str] = Field(default_factory=lambda: list(KNOWN_JOB_TYPES))
    max_body_bytes: int = Field(default=1 << 20, description="Largest request body accepted")
    max_code_file_bytes: int = Field(default=256 << 10, description="Largest single code file")
    max_code_total_bytes: int = Field(default=768 << 10, description="All code files together")
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    object_store: ObjectStoreSettings = Field(
        default_factory=ObjectStoreSettings,
        description="CONTROLROOM_OBJECT_STORE__BACKEND=local|s3, __DIRECTORY, __S3_ENDPOINT, ...",
    )
    max_artifact_bytes: int = Field(default=50 << 20, description="Largest artifact upload")
    callback_allowlist: list[str] = Field(
        default_factory=list,
        description="CIDRs or host names callbacks may use although private or loopback, "
        'e.g. ["127.0.0.0/8"]; link-local and metadata addresses are never allowed',
    )
    rate_limit_per_second: float = Field(
        default=1000.0, ge=0, description="Requests per second per tenant (0 turns it off)"
    )
    rate_limit_burst: int = Field(default=2000, ge=1)
    read_model: Literal["in_process", "separate"] = Field(
        default="in_process",
        description="Where run events are projected into the read model: in the API process, "
        "or in a separate `python -m controlroom_gateway projector` process, so that the "
        "projection never delays a request",
    )
    sse_poll_interval_seconds: float = Field(
        default=0.25, gt=0, description="How often a live event stream looks for new events"
    )

    @field_validator("jwt_secret")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("CONTROLROOM_JWT_SECRET must not be empty")
        return value
