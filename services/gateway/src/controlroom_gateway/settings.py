from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from controlroom_contracts.api import KNOWN_JOB_TYPES
from controlroom_runtime.objectstore import ObjectStoreSettings
from controlroom_runtime.routing_file import RoutingSettings
from controlroom_runtime.run_policy import RunPolicySettings
from controlroom_runtime.settings import ServiceSettings

MIN_JWT_SECRET_BYTES = 32


class GatewaySettings(ServiceSettings, RunPolicySettings, RoutingSettings):
    service_key: ClassVar[str] = "GATEWAY"

    port: int = 8789
    jwt_secret: SecretStr = Field(description="HS256 secret for bearer tokens (required)")
    jwt_jwks_url: str | None = Field(
        default=None, description="Also accept RS256 tokens signed by a key at this JWKS URL"
    )
    jwt_jwks_ttl_seconds: float = Field(
        default=300.0, gt=0, description="Refetch the JWKS when the copy held is this old"
    )
    jwt_jwks_cooldown_seconds: float = Field(
        default=10.0,
        gt=0,
        description="At most one JWKS fetch per this many seconds, however many unknown kids "
        "tokens name",
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss` (unset: any)")
    jwt_audience: str | None = Field(
        default=None,
        description="Required in `aud` (unset: a token naming any audience is refused)",
    )
    token_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    job_types: list[str] = Field(default_factory=lambda: list(KNOWN_JOB_TYPES))
    max_body_bytes: int = Field(default=1 << 20, description="Largest request body accepted")
    max_code_file_bytes: int = Field(default=256 << 10, description="Largest single code file")
    max_code_total_bytes: int = Field(default=768 << 10, description="All code files together")
    syntax_parse_workers: int = Field(
        default=2, ge=1, description="Code files parsed at once by /jobs/validate (threads)"
    )
    syntax_shell_processes: int = Field(
        default=4, ge=1, description="`sh -n` checks running at once for /jobs/validate"
    )
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
    rate_limit_unauthenticated_per_second: float = Field(
        default=50.0,
        ge=0,
        description="Requests per second per client address without a valid token (0: off)",
    )
    rate_limit_unauthenticated_burst: int = Field(default=500, ge=1)
    read_model: Literal["in_process", "separate"] = Field(
        default="in_process",
        description="Where run events are projected into the read model: in the API process, "
        "or in a separate `python -m controlroom_gateway projector` process, so that the "
        "projection never delays a request",
    )
    sse_poll_interval_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How often a live event stream re-reads its run without a wake-up: only a "
        "backstop, as streams are woken when their runs' events commit (LISTEN/NOTIFY)",
    )
    sse_max_streams_per_tenant: int = Field(
        default=100, ge=1, description="Live event streams a tenant may hold open per API process"
    )
    idempotency_key_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key replays its submission (Stripe's 24 h); past "
        "it the same key makes a new run, and the key's row is deleted",
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("CONTROLROOM_JWT_SECRET must not be empty")
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash, 256 bits.
        if (length := len(value.get_secret_value().encode())) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"CONTROLROOM_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes for HS256 "
                f"(it is {length})"
            )
        return value
