"""Commands against a stand-in API: exit codes, one-line errors, JSON outputs."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlroom_cli import runs as runs_command
from controlroom_cli.app import app
from controlroom_cli.errors import ExitCode
from controlroom_cli.waiting import exit_code

Cli = Callable[..., tuple[int, str, str]]
Answer = Callable[[Callable[[httpx.Request], httpx.Response]], None]
RUN = "0b1f5a52-6a3b-4b53-9d43-7d4b7a0e5a11"


def view(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": RUN,
        "job_type": "diagram_export",
        "status": status,
        "created_by": "tests",
        "created_at": "2026-12-05T10:00:00Z",
        "started_at": "2026-12-05T10:00:01Z",
        "completed_at": "2026-12-05T10:00:04Z" if status in ("completed", "failed") else None,
        "attempt": 1,
        "max_attempts": 3,
        "exit_code": {"completed": 0, "failed": 3}.get(status),
        "failure_reason": "exit_code" if status == "failed" else None,
        "error": "Traceback...\nValueError: bad input" if status == "failed" else None,
        "artifacts": [],
        "lane": "A",
        "priority": 3,
        **fields,
    }


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def stream(*events: dict[str, Any]) -> str:
    return "".join(
        f"id: {e['id']}\r\nevent: {e['event_type']}\r\ndata: {json.dumps(e)}\r\n\r\n"
        for e in events
    )


def ended(status: str) -> Callable[[httpx.Request], httpx.Response]:
    """An API whose run is running, then (on its stream) ends in ``status``."""
    seen = {"stream": False}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events/stream"):
            seen["stream"] = True
            log = {
                "id": 2,
                "event_type": "log",
                "occurred_at": None,
                "data": {"stream": "stdout", "lines": ["working"]},
            }
            end = {"id": 3, "event_type": status, "occurred_at": None, "data": {}}
            return httpx.Response(
                200, text=stream(log, end), headers={"content-type": "text/event-stream"}
            )
        if path == f"/api/v1/runs/{RUN}":
            return httpx.Response(200, json=view(status if seen["stream"] else "running"))
        raise AssertionError(f"unexpected {request.method} {request.url}")

    return handle


@pytest.mark.parametrize(
    ("status", "timed_out", "code"),
    [
        ("completed", False, ExitCode.OK),
        ("failed", False, ExitCode.FAILED),
        ("cancelled", False, ExitCode.CANCELLED),
        ("running", True, ExitCode.TIMEOUT),
        ("queued", True, ExitCode.TIMEOUT),
    ],
)
def test_the_outcome_of_a_wait_is_its_exit_code(status: str, timed_out: bool, code: int) -> None:
    assert exit_code(status, timed_out) == code


@pytest.mark.parametrize(("status", "code"), [("completed", 0), ("failed", 1), ("cancelled", 2)])
def test_wait_follows_the_stream_and_exits_with_the_outcome(
    cli: Cli, answer: Answer, status: str, code: int
) -> None:
    answer(ended(status))
    result, out, err = cli("wait", RUN, "--logs")
    assert result == code, err
    assert out.splitlines()[0] == "working"
    assert out.splitlines()[-1].startswith(f"run {RUN} {status}")


def test_wait_polls_when_the_stream_is_refused(cli: Cli, answer: Answer) -> None:
    polled: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events/stream"):
            return problem(429, "Too many requests", "tenant acme has 100 live event streams open")
        if path.endswith("/events"):
            polled.append(request.url.params.get("cursor"))
            items = [{"id": 9, "event_type": "failed", "occurred_at": None, "data": {}}]
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        return httpx.Response(200, json=view("failed" if polled else "running"))

    answer(handle)
    result, out, _ = cli("wait", RUN, "--json")
    assert result == ExitCode.FAILED and polled == [None]
    assert json.loads(out)["status"] == "failed"


def test_status_json_is_the_api_view(cli: Cli, answer: Answer) -> None:
    answer(lambda _request: httpx.Response(200, json=view("completed")))
    result, out, _ = cli("status", RUN, "--json")
    assert result == 0 and json.loads(out) == view("completed")


def test_status_for_people_says_how_it_ended(cli: Cli, answer: Answer) -> None:
    answer(lambda _request: httpx.Response(200, json=view("failed")))
    result, out, _ = cli("status", RUN)
    assert result == 0
    assert "failed  exit 3  (exit_code)" in out and "ValueError: bad input" in out


@pytest.mark.parametrize(
    ("answered", "line", "code"),
    [
        (
            problem(404, "Run not found", f"run {RUN} not found"),
            f"error: 404 Run not found: run {RUN} not found",
            ExitCode.API,
        ),
        (
            problem(401, "Unauthorized", "invalid token: Signature verification failed"),
            "error: 401 Unauthorized: invalid token: Signature verification failed",
            ExitCode.API,
        ),
        (
            httpx.Response(502, text="<html>\n<h1>Bad gateway</h1>\n</html>"),
            "error: 502 Bad Gateway: <html> <h1>Bad gateway</h1> </html>",
            ExitCode.API,
        ),
    ],
)
def test_an_api_error_is_one_line_and_exit_5(
    cli: Cli, answer: Answer, answered: httpx.Response, line: str, code: int
) -> None:
    answer(lambda _request: answered)
    result, out, err = cli("status", RUN)
    assert (result, out, err) == (code, "", line + "\n")


def test_no_token_is_explained(cli: Cli, answer: Answer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTROLROOM_TOKEN")
    answer(lambda _request: problem(401, "Unauthorized", "a bearer token is required"))
    result, _, err = cli("runs")
    assert result == ExitCode.API
    assert err == (
        "error: 401 Unauthorized: a bearer token is required "
        "(no token configured: set CONTROLROOM_TOKEN or a profile's token)\n"
    )


def test_a_refused_connection_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CONTROLROOM_URL", f"http://127.0.0.1:{port}")
    result, out, err = cli("status", RUN)
    assert (result, out) == (ExitCode.API, "")
    assert err == f"error: cannot reach http://127.0.0.1:{port}: connection refused\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status"], "error: Missing argument 'RUN_ID'. (see: controlroom status --help)"),
        (["nonsense"], "error: No such command 'nonsense'."),
        (["status", "not-a-run"], "error: 'not-a-run' is not a run id (a UUID)"),
        (["runs", "--limit", "0"], "error: Invalid value for '--limit'"),
        (["runs", "--status", "done"], "error: --status 'done': one of queued, dispatched"),
        (["lineage", "raw.x", "--format", "svg"], "error: --format 'svg': one of tree"),
        (["submit"], "error: give a job file, or --type, --spec, --code (see --help)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_4(cli: Cli, args: list[str], message: str) -> None:
    result, out, err = cli(*args)
    assert result == ExitCode.USAGE and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err


def test_a_bad_profile_file_is_a_configuration_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_CONFIG", str(tmp_path / "config.toml"))
    result, _, err = cli("runs")
    assert result == ExitCode.USAGE
    assert err == f"error: {tmp_path / 'config.toml'}: no such file (CONTROLROOM_CONFIG)\n"


def test_an_unexpected_error_is_one_line_without_a_traceback(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("something no one planned for")

    monkeypatch.setattr(runs_command, "connect", broken)
    result, _, err = cli("status", RUN)
    assert result == ExitCode.API
    assert err.startswith("error: unexpected RuntimeError: something no one planned for")
    assert "Traceback" not in err and err.count("\n") == 1


def test_no_command_prints_the_help_and_exits_4(cli: Cli) -> None:
    result, _, err = cli()
    assert result == ExitCode.USAGE and "Exit codes:" in err and "submit" in err


def test_help_documents_precedence_and_exit_codes(cli: Cli) -> None:
    result, out, _ = cli("--help")
    assert result == 0
    assert "CONTROLROOM_URL and CONTROLROOM_TOKEN" in out and "XDG_CONFIG_HOME" in out
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 "):
        assert f"\n    {code}" in out
    assert app.info.name == "controlroom"


def test_submit_refused_with_422_is_an_invalid_job_at_its_line(
    cli: Cli, answer: Answer, tmp_path: Path
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: diagram_export\nspec:\n  inputs: {}\ncode:\n  files: []\n")
    errors = [
        {"field": "body.spec.text", "message": "Field required", "type": "missing"},
        {"field": "body.code.files", "message": "List should have at least 1 item", "type": "x"},
    ]
    answer(lambda _request: problem(422, "Invalid request", "...", errors=errors))
    result, out, err = cli("submit", str(path))
    assert (result, out) == (ExitCode.FAILED, "")
    assert err == (
        f"error: {path}:2:1: 422 Invalid request: body.spec.text: Field required; "
        "body.code.files: List should have at least 1 item\n"
    )


def test_validate_prints_each_problem_at_its_place_and_exits_1(
    cli: Cli, answer: Answer, tmp_path: Path
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "job_type: diagram_export\nspec:\n  inputs: {}\ncode:\n  files:\n"
        "    - path: main.py\n      content: |\n        print(1\n"
    )
    report = {
        "valid": False,
        "errors": [
            {"code": "schema.missing", "message": "Field required", "field": "body.spec.text"},
            {
                "code": "syntax.python",
                "message": "'(' was never closed",
                "file": "main.py",
                "line": 1,
                "column": 6,
            },
        ],
        "warnings": [],
    }
    seen: list[Any] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=report)

    answer(handle)
    result, out, _ = cli("validate", str(path))
    assert result == ExitCode.FAILED
    assert seen[0]["created_by"] == "controlroom-cli"
    assert out.splitlines() == [
        f"{path}:2:1: error: body.spec.text: Field required [schema.missing]",
        f"{path}:8:14: error: '(' was never closed [syntax.python]",
        f"{path}: invalid (2 errors, 0 warnings)",
    ]
    result, out, _ = cli("validate", str(path), "--json")
    assert result == ExitCode.FAILED
    assert [e["location"] for e in json.loads(out)["errors"]] == [f"{path}:2:1", f"{path}:8:14"]


def test_a_yaml_error_in_the_job_file_is_one_line_exit_1(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: x\nspec:\n  text: 'unclosed\n")
    result, out, err = cli("validate", str(path))
    assert (result, out) == (ExitCode.FAILED, "")
    assert err.startswith(f"error: {path}:4:1: not valid YAML") and err.count("\n") == 1


def artifact_api(content: bytes, checksum: str) -> Callable[[httpx.Request], httpx.Response]:
    artifact = {
        "id": "6d2b0d5e-1f43-5b9c-8a77-0c0e6a9f3b21",
        "run_id": RUN,
        "path": "output/report.csv",
        "size_bytes": len(content),
        "checksum": checksum,
        "content_type": "text/csv",
        "url": "/api/v1/artifacts/6d2b0d5e-1f43-5b9c-8a77-0c0e6a9f3b21",
        "created_at": "2026-12-05T10:00:04Z",
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/artifacts/"):
            assert request.url.params["redirect"] == "false"
            return httpx.Response(200, content=content)
        return httpx.Response(200, json=view("completed", artifacts=[artifact]))

    return handle


def test_artifacts_get_verifies_the_checksum(
    cli: Cli, answer: Answer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = b"day,orders\n2026-12-01,412\n" * 1000
    answer(artifact_api(content, "sha256:" + hashlib.sha256(content).hexdigest()))
    monkeypatch.chdir(tmp_path)
    result, out, _ = cli("artifacts", "get", RUN, "output/report.csv", "--json")
    assert result == 0
    assert (tmp_path / "report.csv").read_bytes() == content
    assert json.loads(out)["bytes"] == len(content)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_a_checksum_mismatch_deletes_the_file_and_exits_1(
    cli: Cli, answer: Answer, tmp_path: Path
) -> None:
    answer(artifact_api(b"tampered", "sha256:" + hashlib.sha256(b"original").hexdigest()))
    target = tmp_path / "out.csv"
    result, _, err = cli("artifacts", "get", RUN, "output/report.csv", "-o", str(target))
    assert result == ExitCode.FAILED
    assert err.startswith(f"error: {target}: checksum mismatch: expected sha256:")
    assert err.rstrip().endswith("the file was deleted")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_artifact_names_the_ones_there_are(cli: Cli, answer: Answer) -> None:
    answer(artifact_api(b"x", "sha256:" + hashlib.sha256(b"x").hexdigest()))
    result, _, err = cli("artifacts", "get", RUN, "nope.txt")
    assert result == ExitCode.API
    assert (
        err
        == "error: 404 Not found: no artifact 'nope.txt' in this run (it has: output/report.csv)\n"
    )


def test_logs_follow_json_is_one_object_per_line(cli: Cli, answer: Answer) -> None:
    answer(ended("completed"))
    result, out, err = cli("logs", RUN, "-f", "--json")
    assert result == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [
        {"event_id": 2, "occurred_at": None, "attempt": None, "stream": "stdout", "line": "working"}
    ]


def test_logs_reads_every_page_of_the_history(cli: Cli, answer: Answer) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/events"):
            return httpx.Response(200, json=view("completed"))
        after = int(request.url.params.get("cursor") or 0)
        ids = range(after + 1, min(after + 3, 7))
        items: list[dict[str, Any]] = [
            {
                "id": n,
                "event_type": "log",
                "occurred_at": None,
                "data": {"stream": "stdout", "lines": [f"line {n}"]},
            }
            for n in ids
        ]
        more = str(ids[-1]) if ids and ids[-1] < 6 else None
        return httpx.Response(200, json={"items": items, "next_cursor": more})

    answer(handle)
    result, out, _ = cli("logs", RUN)
    assert result == 0 and out.splitlines() == [f"line {n}" for n in range(1, 7)]


MARKUP = "[/] [bold]x[/bold] [link=y]"


@pytest.mark.parametrize(
    ("args", "path", "body"),
    [
        (
            ["sessions"],
            "/sessions",
            {"items": [{"session_id": "s1", "name": MARKUP, "status": "active"}]},
        ),
        (
            ["templates", "list"],
            "/templates",
            {"items": [{"name": MARKUP, "version": 1, "description": MARKUP, "job": {}}]},
        ),
        (["runs"], "/runs", {"items": [view("completed", job_type=MARKUP, lane=MARKUP)]}),
        (
            ["artifacts", "list", RUN],
            f"/runs/{RUN}",
            view(
                "completed",
                artifacts=[{"id": "a1", "path": MARKUP, "size_bytes": 1, "checksum": "sha256:0"}],
            ),
        ),
    ],
)
def test_api_text_in_tables_is_shown_as_it_is_never_as_markup(
    cli: Cli, answer: Answer, args: list[str], path: str, body: dict[str, Any]
) -> None:
    answer(lambda r: httpx.Response(200, json=body if r.url.path.endswith(path) else {}))
    code, out, err = cli(*args)
    assert code == 0, err
    assert MARKUP in out


def test_a_token_with_a_newline_exits_4_without_showing_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_TOKEN", "s3cret\nmore")
    code, out, err = cli("runs")
    assert code == ExitCode.USAGE
    assert len(err.splitlines()) == 1 and "s3cret" not in err and out == ""


def test_a_url_with_an_open_ipv6_bracket_exits_4(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_URL", "http://[::1")
    code, _, err = cli("runs")
    assert code == ExitCode.USAGE
    assert err.startswith("error: CONTROLROOM_URL: ") and len(err.splitlines()) == 1
