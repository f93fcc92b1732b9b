"""A whole Control Room (six processes) on the session's nats-server and a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from controlroom_devstack.engine import ContainerEngine
from controlroom_devstack.infra import NatsServer, Postgres, free_port
from controlroom_devstack.pytest_plugin import purge_streams
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.stack import ServiceStack, StackConfig

SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed cross-service test, attach the tail of every service log to the report."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, ServiceStack):
        for path in sorted(stack.config.logs_dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-40:]
            report.sections.append((f"service log {path.name}", "\n".join(tail)))
    return report


@pytest.fixture(scope="session")
def job_sandbox_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """executor-docker runs jobs in containers when an engine exists here (CI installs
    Podman), as ``make up`` does; otherwise on the local-process backend."""
    try:
        engine: ContainerEngine = request.getfixturevalue("docker_engine")
    except pytest.skip.Exception:
        return {"CONTROLROOM_JOB_BACKEND": "local"}
    return {
        "CONTROLROOM_JOB_BACKEND": "docker",
        "CONTROLROOM_DOCKER_URL": engine.url,
        "CONTROLROOM_DOCKER_ENGINE": engine.name,
    }


@pytest.fixture(scope="session")
def sandboxed(job_sandbox_env: dict[str, str]) -> bool:
    return job_sandbox_env["CONTROLROOM_JOB_BACKEND"] == "docker"


@asynccontextmanager
async def whole_system(
    nats_server: NatsServer,
    postgres_server: Postgres,
    base: Path,
    *,
    database: str,
    extra_env: dict[str, str],
) -> AsyncIterator[ServiceStack]:
    """Every service on the session's nats-server (its streams purged) and a database of
    ``database``'s name, until the block ends."""
    await purge_streams(nats_server.url)
    postgres_server.create_database(database)
    services = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres_server.url(database),
            jwt_secret=SECRET,
            logs_dir=base / "logs",
            workdir=base / "work",
            gateway_port=free_port(),
            extra_env=extra_env,
        )
    )
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="module")
async def stack(
    nats_server: NatsServer,
    postgres_server: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
    job_sandbox_env: dict[str, str],
) -> AsyncIterator[ServiceStack]:
    extra_env = {
        # One job type goes to executor-k8s, where no cluster is configured.
        "CONTROLROOM_ROUTES": '{"schema_migration": "k8s"}',
        "CONTROLROOM_CALLBACK_ALLOWLIST": '["127.0.0.0/8"]',
        # Repositories the tests make on this disk are checked out over file://.
        "CONTROLROOM_CHECKOUT__ALLOW_FILE_URLS": "true",
        **job_sandbox_env,
    }
    base = tmp_path_factory.mktemp("stack")
    async with whole_system(
        nats_server, postgres_server, base, database="e2e", extra_env=extra_env
    ) as services:
        yield services


@pytest.fixture(scope="module")
def token() -> str:
    from controlroom_gateway.auth import mint_token

    return mint_token(SECRET, tenant_id="acme", subject="e2e", role="operator", ttl_seconds=3600)


@pytest.fixture
async def api(stack: ServiceStack, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def logs_dir(stack: ServiceStack) -> Iterator[Path]:
    yield stack.config.logs_dir
