"""Property-based requests from the gateway's own /openapi.json: no 5xx, and every answer has
the status's documented content type and schema.

The app runs in this test's event loop (with the real NATS and Postgres of the session) behind
a real HTTP server, so the schemathesis CLI talks to it over a socket like any client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from controlroom_devstack.infra import venv_bin
from controlroom_gateway.settings import GatewaySettings

from .live_server import serving


def expected_unavailable(document: dict[str, Any]) -> str:
    """Schemathesis configuration: the scheduler, lineage and notifier do not run here, so an
    operation that documents a 503 (it asks one of them) may answer it; that answer is still
    checked for its content type and schema like any other."""
    config = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "503" in operation["responses"]:
                config.append(
                    "[[operations]]\n"
                    f"include-path = {json.dumps(path)}\n"
                    f"include-method = {json.dumps(method.upper())}\n"
                    'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
                )
    return "\n".join(config)


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    # The services the gateway asks are not running here: each ask fails at once (no
    # responders); the timeout only bounds a reply that never comes.
    return settings.model_copy(update={"rpc_timeout_seconds": 0.5})


@pytest.fixture
async def base_url(gateway: FastAPI) -> AsyncIterator[str]:
    async with serving(gateway) as url:
        yield url


async def test_generated_requests_get_no_5xx_and_documented_answers(
    base_url: str, token: Callable[..., str], tmp_path: Path
) -> None:
    """Admin: the role that may call every operation. Bounded examples keep it about a
    minute on two cores; the seed makes a failure reproducible."""
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{base_url}/openapi.json")).json()
    config = tmp_path / "schemathesis.toml"
    config.write_text(expected_unavailable(document))
    process = await asyncio.create_subprocess_exec(
        str(venv_bin("st")),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token(role='admin')}",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "8",
        "--seed",
        "20261201",
        "--generation-with-security-parameters",
        "false",
        # The tenant's run feed never ends by itself (test_runboard_api covers its 401/422).
        "--exclude-path",
        "/api/v1/runs/stream",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-12000:]
    assert "passed" in text, text[-2000:]
