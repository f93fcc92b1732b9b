from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from controlroom_executor.settings import ExecutorSettings
from controlroom_runtime.settings import ServiceSettings


class ExecutorDockerSettings(ServiceSettings, ExecutorSettings):
    service_key: ClassVar[str] = "EXECUTOR_DOCKER"

    port: int = 8791
    job_backend: Literal["auto", "docker", "local"] = Field(
        default="auto",
        description="docker: containers through the Docker Engine API at docker_url (Docker or "
        "Podman); local: unsandboxed local processes (development only); auto: docker when "
        "docker_url is set, else local",
    )
    docker_url: str | None = Field(
        default=None,
        description="The Docker Engine API, e.g. unix:///run/podman/podman.sock or "
        "unix:///var/run/docker.sock",
    )
    docker_engine: str = Field(default="docker", description="What to call it: docker, podman")
    job_user: str | None = Field(
        default="controlroom-job",
        description="Local backend: the unprivileged user jobs run as (made when running as "
        "root); unset: the executor's own user",
    )
    use_bwrap: bool | None = Field(
        default=None, description="Local backend: run jobs under bubblewrap (default: if found)"
    )

    def chosen_backend(self) -> Literal["docker", "local"]:
        if self.job_backend == "auto":
            return "docker" if self.docker_url else "local"
        return self.job_backend

    @model_validator(mode="after")
    def _sandboxed_in_production(self) -> ExecutorDockerSettings:
        if self.env == "production" and self.chosen_backend() == "local":
            raise ValueError(
                "CONTROLROOM_ENV=production refuses the local backend (jobs would run "
                "unsandboxed): set CONTROLROOM_DOCKER_URL to a Docker or Podman socket"
            )
        if self.chosen_backend() == "docker" and not self.docker_url:
            raise ValueError("the docker backend needs CONTROLROOM_DOCKER_URL")
        return self
