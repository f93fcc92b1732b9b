"""Pre-flight of files no parser enjoys: a problem with the file, named, never a 500.

At the deployment's real sizes (a 256 KiB file, 1 MiB bodies), not the small test defaults.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlroom_gateway.settings import GatewaySettings

DEEP = 100_000


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    defaults = GatewaySettings.model_fields
    return settings.model_copy(
        update={
            name: defaults[name].default
            for name in ("max_body_bytes", "max_code_file_bytes", "max_code_total_bytes")
        }
    )


def _job(*files: tuple[str, str]) -> dict[str, Any]:
    return {
        "job_type": "diagram_export",
        "spec": {"text": "x"},
        "code": {"files": [{"path": path, "content": content} for path, content in files]},
        "created_by": "t",
    }


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("brackets.py", "x = " + "[" * DEEP + "]" * DEEP),
        ("minus.py", "x = " + "-" * DEEP + "1"),  # CPython: MemoryError
        ("attributes.py", "x = a" + ".b" * DEEP),  # CPython: RecursionError
        ("nested.json", "[" * DEEP + "]" * DEEP),
        ("nested.yaml", "[" * DEEP + "]" * DEEP),
        ("nested.sql", "SELECT " + "(" * DEEP + "1" + ")" * DEEP),
        ("unterminated.sql", "SELECT 'never closed"),  # sqlglot: TokenError, not ParseError
        ("negative.sql", "$\r"),  # sqlglot: a ParseError at column -1
        ("nested.sh", "x=" + "$(" * 50_000 + "true" + ")" * 50_000),  # dash: SIGSEGV
    ],
)
async def test_a_file_no_parser_can_read_is_a_validation_problem_naming_it(
    client: httpx.AsyncClient, path: str, content: str
) -> None:
    response = await client.post("/api/v1/jobs/validate", json=_job((path, content)))
    assert response.status_code == 200, response.text[:2000]
    report = response.json()
    assert report["valid"] is False
    syntax = [e for e in report["errors"] if e["code"].startswith("syntax.")]
    assert len(syntax) == 1, report["errors"]
    assert syntax[0]["file"] == path and syntax[0]["message"]


async def test_two_hundred_shell_scripts_are_each_checked_and_reported_in_order(
    client: httpx.AsyncClient,
) -> None:
    files = [
        (f"s{i:03}.sh", "if true; then echo x\n" if i % 3 == 0 else f"echo {i}\n")
        for i in range(200)
    ]
    report = (await client.post("/api/v1/jobs/validate", json=_job(*files))).json()
    broken = [e["file"] for e in report["errors"] if e["code"] == "syntax.shell"]
    assert broken == [path for i, (path, _) in enumerate(files) if i % 3 == 0]


@pytest.mark.parametrize("path", ["/api/v1/jobs/validate", "/api/v1/jobs/run"])
async def test_a_body_nested_too_deeply_is_a_422_problem(
    client: httpx.AsyncClient, path: str
) -> None:
    body = b'{"job_type": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "json_invalid"
