"""The routing matrix: which executor kind runs a job type, in which image, with what limits.

It is configuration (a YAML file, ``CONTROLROOM_ROUTING_FILE``), read by the scheduler (to
route and to put the chosen :class:`ExecutionProfile` into each ``DispatchRun``), by the
executors (the fallback for a dispatch that carries none) and shown by ``GET /api/v1/routing``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from controlroom_contracts.api import RetryPolicy

Network = Literal["none", "egress"]

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}
_QUANTITY = re.compile(r"^\s*(\d+)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)


def parse_bytes(value: object) -> object:
    """``512Mi``, ``2Gi``, ``100M`` or a plain number of bytes (Kubernetes' quantity style)."""
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size such as 512Mi, 2Gi or 1048576")
        return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    return value


ByteSize = Annotated[int, BeforeValidator(parse_bytes), Field(ge=1 << 20)]


class ExecutionProfile(BaseModel):
    """How one attempt runs: what the scheduler puts in a dispatch for the executor."""

    image: str = Field(min_length=1, max_length=512, description="Container image")
    commands: dict[str, list[str]] = Field(
        description='Entrypoint extension -> the command before the entrypoint, e.g. ".py": '
        '["python3", "-I"]'
    )
    memory_bytes: ByteSize = Field(default=512 << 20, alias="memory")
    cpus: float = Field(default=1.0, gt=0, le=64)
    pids: int = Field(default=256, ge=8, le=65536, description="Most processes at once")
    tmp_bytes: ByteSize = Field(default=64 << 20, alias="tmp", description="Size of /tmp")
    workspace_bytes: ByteSize = Field(
        default=1 << 30, alias="workspace", description="Most the job may write to /workspace"
    )
    network: Network = Field(default="none", description="none: no network at all")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    def command_for(self, entrypoint: str) -> list[str] | None:
        """The full command that runs ``entrypoint`` (a path inside /workspace), or None."""
        prefix = self.commands.get(PurePosixPath(entrypoint).suffix)
        return None if prefix is None else [*prefix, entrypoint]


class Route(ExecutionProfile):
    """One job type's row of the matrix."""

    executor: str = Field(min_length=1, max_length=64, description="Executor kind, e.g. docker")
    timeout_seconds: int | None = Field(default=None, ge=1, description="Default per attempt")
    retry: RetryPolicy | None = Field(default=None, description="Default retry policy")

    def profile(self) -> ExecutionProfile:
        return ExecutionProfile.model_validate(
            self.model_dump(include=set(ExecutionProfile.model_fields))
        )


class RoutingMatrix(BaseModel):
    """The whole file: ``job_types: {<job_type>: Route}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_types: dict[str, Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> RoutingMatrix:
        for name in self.job_types:
            if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", name):
                raise ValueError(f"job type {name!r}: letters, digits, '.', '_', '-', 1..64")
        return self

    def route(self, job_type: str) -> Route | None:
        return self.job_types.get(job_type)
