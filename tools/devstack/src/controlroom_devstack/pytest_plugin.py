"""pytest fixtures: one real nats-server and one real Postgres per test session."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from controlroom_devstack.engine import ContainerEngine, find_or_start_engine
from controlroom_devstack.images import Builder, ensure_images
from controlroom_devstack.infra import NatsServer, Postgres
from controlroom_devstack.tap import EventTap


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="controlroom-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(session_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(session_dir / "nats", log_file=session_dir / "nats.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(session_dir: Path) -> Iterator[Postgres]:
    server = Postgres(session_dir / "pg", durable=False, database="controlroom_test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A Postgres of one test's own, which it may stop and start (under a short path: its
    socket's path must fit in 107 bytes)."""
    home = Path(tempfile.mkdtemp(prefix="pg-own-"))
    home.chmod(0o755)
    server = Postgres(home / "pg", durable=False, database="own")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: Postgres) -> str:
    """A fresh, empty database for one test: no state leaks between tests."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return postgres_server.url(name)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run an app's lifespan (start the service in-process) for the duration of the block."""
    async with app.router.lifespan_context(app):
        yield app


async def purge_streams(url: str) -> None:
    """Delete every stream (and so every consumer) so a test starts from an empty broker."""
    import nats

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name:
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


@pytest.fixture
async def nats_url(nats_server: NatsServer) -> str:
    """The session's nats-server, emptied for this test."""
    await purge_streams(nats_server.url)
    return nats_server.url


@pytest.fixture
async def event_tap(nats_url: str) -> AsyncIterator[EventTap]:
    tap = EventTap(nats_url)
    await tap.start()
    yield tap
    await tap.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 wire-protocol server (moto_server) for the S3 object-store backend."""
    import subprocess
    import time

    import httpx

    from controlroom_devstack.infra import free_port, venv_bin

    port = free_port()
    process = subprocess.Popen(
        [str(venv_bin("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def docker_engine(session_dir: Path) -> Iterator[ContainerEngine]:
    """A container engine with the Docker API (Podman's service started for the session, or a
    running Docker) holding the job images (built on first use: a minute for the Python one).
    Skips the test when there is no engine."""
    engine = find_or_start_engine(session_dir / "engine")
    if engine is None:
        pytest.skip("no container engine: podman is not installed and no Docker daemon answers")
    try:
        if not engine.cli:
            pytest.skip(f"{engine.name} answers but its CLI, which builds the images, is missing")
        ensure_images(Builder(engine.cli, engine.env))
        yield engine
    finally:
        engine.stop()
