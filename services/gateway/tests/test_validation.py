"""Pre-flight validation: syntax by file kind, callback policy, and the endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlroom_contracts.api import CodeFile
from controlroom_gateway.jobs.syntax_checker import SyntaxChecker
from controlroom_runtime.callback_policy import CallbackPolicy

PROBLEM = "application/problem+json"


@pytest.fixture
async def checker() -> AsyncIterator[SyntaxChecker]:
    checker = SyntaxChecker(parse_workers=2, shell_processes=2)
    yield checker
    await checker.close()


@pytest.mark.parametrize(
    ("path", "content", "code", "line", "column"),
    [
        ("a.py", "def f(:\n    pass", "syntax.python", 1, 7),
        ("q.sql", "SELECT * FROM t WHERE (a = 1", "syntax.sql", 1, None),
        ("c.json", '{"a": 1,\n "b": }', "syntax.json", 2, 7),
        ("c.yaml", "a: [1, 2\nb: 3", "syntax.yaml", None, None),
        ("run.sh", "if true; then\necho x\n", "syntax.shell", None, None),
    ],
)
async def test_syntax_errors_are_located_by_file_kind(
    checker: SyntaxChecker,
    path: str,
    content: str,
    code: str,
    line: int | None,
    column: int | None,
) -> None:
    issues = await checker.check([CodeFile(path=path, content=content)])
    assert [i.code for i in issues][:1] == [code]
    assert issues[0].file == path
    if line is not None:
        assert issues[0].line == line
    if column is not None:
        assert issues[0].column == column


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("a.py", "print('ok')\n"),
        ("q.sql", "SELECT a, count(*) FROM s.t GROUP BY a;\nINSERT INTO x VALUES (1);"),
        ("c.json", '{"a": [1, 2]}'),
        ("c.yml", "a: 1\n---\nb: [1, 2]\n"),
        ("run.sh", "set -e\nfor i in 1 2; do echo $i; done\n"),
        ("notes.txt", "anything"),
    ],
)
async def test_valid_files_have_no_issues(checker: SyntaxChecker, path: str, content: str) -> None:
    assert await checker.check([CodeFile(path=path, content=content)]) == []


async def test_shell_check_never_runs_the_script(checker: SyntaxChecker, tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    issues = await checker.check([CodeFile(path="x.sh", content=f"touch {marker}\n")])
    assert issues == [] and not marker.exists()


@pytest.mark.parametrize(
    ("url", "allow", "code"),
    [
        ("http://127.0.0.1:9000/hook", [], "callback.private"),
        ("http://10.1.2.3/hook", [], "callback.private"),
        ("http://[::1]/hook", [], "callback.private"),
        ("http://169.254.169.254/latest/meta-data", ["0.0.0.0/0"], "callback.link_local"),
        ("http://metadata.google.internal/x", ["metadata.google.internal"], "callback.metadata"),
        ("http://169.254.10.10/x", ["169.254.0.0/16"], "callback.link_local"),
        ("ftp://example.com/x", [], "callback.scheme"),
        ("http://no-such-host.invalid/x", [], "callback.unresolvable"),
        ("http://127.0.0.1:9000/hook", ["127.0.0.0/8"], None),
        ("http://8.8.8.8/hook", [], None),
    ],
)
async def test_callback_policy(url: str, allow: list[str], code: str | None) -> None:
    problem = await CallbackPolicy(allow).problem(url)
    assert (problem[0] if problem else None) == code


async def test_validate_reports_every_problem_and_runs_nothing(client: httpx.AsyncClient) -> None:
    body = {
        "job_type": "spark_etl",
        "spec": {"text": "x", "inputs": {"source": "raw.events", "target": "not a uri"}},
        "code": {
            "files": [
                {"path": "jobs/etl.py", "content": "def broken(:\n"},
                {"path": "q.sql", "content": "SELECT FROM WHERE"},
            ]
        },
        "created_by": "me",
        "callbacks": {"on_complete": "http://169.254.169.254/x"},
    }
    report = (await client.post("/api/v1/jobs/validate", json=body)).json()
    assert report["valid"] is False
    codes = {e["code"] for e in report["errors"]}
    assert {"syntax.python", "syntax.sql", "input.entity", "callback.link_local"} <= codes
    # No scheduler runs in this test: routing cannot be verified, which is a warning.
    assert [w["code"] for w in report["warnings"]] == ["route.unverified"]

    schema = (await client.post("/api/v1/jobs/validate", json={"job_type": "spark_etl"})).json()
    assert schema["valid"] is False
    assert {e["field"] for e in schema["errors"]} >= {"body.spec", "body.code", "body.created_by"}
    traversal = {**body, "code": {"files": [{"path": "../etc/x.py", "content": ""}]}}
    found = (await client.post("/api/v1/jobs/validate", json=traversal)).json()["errors"]
    assert found[0]["field"] == "body.code.files.0.path" and found[0]["file"] == "../etc/x.py"
    not_json = await client.post(
        "/api/v1/jobs/validate", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert (
        await client.post("/api/v1/jobs/validate", json=body, headers={"Authorization": ""})
    ).status_code == 401


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/latest/meta-data/", "callback.link_local"),
        ("http://10.0.0.5/hook", "callback.private"),
        ("http://metadata.google.internal/x", "callback.metadata"),
    ],
)
async def test_submit_refuses_callbacks_the_policy_refuses(
    client: httpx.AsyncClient, url: str, code: str
) -> None:
    body = {
        "job_type": "diagram_export",
        "spec": {"text": "x"},
        "code": {"files": [{"path": "a.py", "content": ""}]},
        "created_by": "t",
        "callbacks": {"on_fail": url},
    }
    response = await client.post("/api/v1/jobs/run", json=body)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "body.callbacks.on_fail",
            "message": response.json()["errors"][0]["message"],
            "type": code,
        }
    ]


async def test_a_traversal_path_and_a_metadata_callback_are_both_reported(
    client: httpx.AsyncClient,
) -> None:
    """The issue's example: a schema error no longer hides the rest of the job's problems."""
    body = {
        "job_type": "diagram_export",
        "spec": {"text": "x"},
        "code": {"files": [{"path": "../etc/cron.py", "content": "print(1)"}]},
        "created_by": "t",
        "callbacks": {"on_complete": "http://169.254.169.254/latest/meta-data/"},
    }
    both = [
        ("body.code.files.0.path", "value_error"),
        ("body.callbacks.on_complete", "callback.link_local"),
    ]
    report = (await client.post("/api/v1/jobs/validate", json=body)).json()
    assert report["valid"] is False
    assert [(e["field"], e["code"]) for e in report["errors"]] == [
        (both[0][0], "schema.value_error"),
        both[1],
    ]
    assert report["errors"][0]["file"] == "../etc/cron.py"

    refused = await client.post("/api/v1/jobs/run", json=body)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert [(e["field"], e["type"]) for e in problem["errors"]] == both
    assert (problem["status"], problem["title"]) == (422, "Invalid request")
    assert (await client.get("/api/v1/runs")).json()["items"] == []


async def test_a_job_gets_every_limit_and_callback_problem_at_once(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "job_type": "diagram_export",
        "spec": {"text": "x"},
        "code": {"files": [{"path": "a.py", "content": ""}]},
        "created_by": "t",
        "lane": "Z",
        "timeout_seconds": 7 * 24 * 3600,
        "callbacks": {"on_fail": "http://10.0.0.5/hook", "on_complete": "http://10.0.0.6/hook"},
    }
    refused = await client.post("/api/v1/jobs/run", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["title"] == "Invalid job"
    assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [
        ("body.lane", "unknown_lane"),
        ("body.timeout_seconds", "too_large"),
        ("body.callbacks.on_complete", "callback.private"),
        ("body.callbacks.on_fail", "callback.private"),
    ]
    report = (await client.post("/api/v1/jobs/validate", json=body)).json()
    assert [e["code"] for e in report["errors"]] == [
        "limits.unknown_lane",
        "limits.too_large",
        "callback.private",
        "callback.private",
    ]
