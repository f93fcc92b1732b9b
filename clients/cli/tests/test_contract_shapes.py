"""The CLI reads the API's answers as plain JSON (building the pydantic models would double its
start-up); here it is fed answers made from ``controlroom_contracts``' models, so a field it
reads that the contracts do not define fails a test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from controlroom_contracts.api import (
    ArtifactView,
    AttemptView,
    RunPage,
    RunView,
    ValidationIssue,
    ValidationReport,
)
from controlroom_contracts.resources import SessionPage, SessionView, TemplatePage
from controlroom_contracts.responses import RunCancelAccepted
from controlroom_contracts.rpc import GraphEdge, GraphNode, LineageGraph

Cli = Callable[..., tuple[int, str, str]]
Answer = Callable[[Callable[[httpx.Request], httpx.Response]], None]
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
RUN = uuid.uuid4()


def run_view(status: str = "failed") -> RunView:
    artifact = ArtifactView(
        id=uuid.uuid4(),
        run_id=RUN,
        path="output/report.csv",
        size_bytes=2048,
        checksum="sha256:" + "0" * 64,
        content_type="text/csv",
        url="/api/v1/artifacts/x",
        created_at=NOW,
    )
    attempt = AttemptView(attempt=1, status="failed", executor_kind="docker", exit_code=3)
    return RunView.model_validate(
        {
            "run_id": RUN,
            "job_type": "diagram_export",
            "status": status,
            "created_by": "ci",
            "created_at": NOW,
            "started_at": NOW,
            "completed_at": NOW,
            "attempt": 1,
            "executor_kind": "docker",
            "sandboxed": True,
            "exit_code": 3,
            "failure_reason": "exit_code",
            "error": "boom",
            "artifacts": [artifact],
            "lane": "A",
            "session_id": uuid.uuid4(),
            "queue_reason": "tenant_cap_reached" if status == "queued" else None,
            "queue_position": 2 if status == "queued" else None,
            "attempts": [attempt],
        }
    )


def serve(answers: dict[str, BaseModel | str]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        for prefix, model in answers.items():
            if request.url.path.startswith(prefix):
                if isinstance(model, str):
                    return httpx.Response(200, text=model)
                return httpx.Response(200, content=model.model_dump_json())
        raise AssertionError(f"unexpected {request.url}")

    return handle


@pytest.mark.parametrize("status", ["failed", "queued", "completed"])
def test_status_reads_a_run_view(cli: Cli, answer: Answer, status: str) -> None:
    answer(serve({"/api/v1/runs/": run_view(status)}))
    code, out, err = cli("status", str(RUN))
    assert code == 0, err
    assert status in out and "output/report.csv" in out


def test_runs_reads_a_run_page(cli: Cli, answer: Answer) -> None:
    answer(serve({"/api/v1/runs": RunPage(items=[run_view()], next_cursor="abc")}))
    code, out, err = cli("runs")
    assert code == 0, err
    assert str(RUN) in out and out.rstrip().endswith("next cursor: abc")


def test_artifacts_list_reads_artifact_views(cli: Cli, answer: Answer) -> None:
    answer(serve({"/api/v1/runs/": run_view()}))
    code, out, err = cli("artifacts", "list", str(RUN))
    assert code == 0, err
    assert "output/report.csv" in out and "2.0 KiB" in out


def test_cancel_reads_the_acceptance(cli: Cli, answer: Answer) -> None:
    answer(serve({"/api/v1/runs/": RunCancelAccepted(run_id=RUN, status="running")}))
    code, out, _ = cli("cancel", str(RUN))
    assert (code, out) == (0, f"cancel requested for run {RUN} (it was running)\n")


def test_sessions_read_session_views(cli: Cli, answer: Answer) -> None:
    session = SessionView(
        session_id=uuid.uuid4(),
        name="refactor",
        status="active",
        counts={"running": 1, "completed": 2},
        created_at=NOW,
        created_by="dev",
    )
    answer(
        serve(
            {
                "/api/v1/sessions/": session,
                "/api/v1/sessions": SessionPage(items=[session]),
                "/api/v1/runs": RunPage(items=[run_view()]),
            }
        )
    )
    code, out, err = cli("sessions")
    assert code == 0, err
    assert "refactor" in out and "1 running, 2 completed" in out
    code, out, err = cli("sessions", "show", str(session.session_id))
    assert code == 0, err
    assert "refactor" in out and str(RUN) in out


def test_templates_list_reads_template_views(cli: Cli, answer: Answer) -> None:
    page = TemplatePage.model_validate(
        {
            "items": [
                {
                    "name": "nightly-export",
                    "version": 3,
                    "description": "Exports",
                    "created_by": "admin",
                    "created_at": NOW,
                    "job": {
                        "job_type": "diagram_export",
                        "spec": {"text": "x", "inputs": {"source": "supabase://raw.a"}},
                        "code": {"files": [{"path": "a.py", "content": "print(1)"}]},
                        "created_by": "admin",
                    },
                }
            ]
        }
    )
    answer(serve({"/api/v1/templates": page}))
    code, out, err = cli("templates", "list")
    assert code == 0, err
    assert "nightly-export" in out and "source" in out


def test_validate_reads_a_validation_report(cli: Cli, answer: Answer) -> None:
    report = ValidationReport(
        valid=False,
        errors=[
            ValidationIssue(
                code="syntax.python", message="bad", file=Path(__file__).name, line=2, column=4
            )
        ],
        warnings=[ValidationIssue(code="routing.slow", message="hm")],
    )
    answer(serve({"/api/v1/jobs/validate": report}))
    code, out, _ = cli("validate", "--type", "x", "--spec", "y", "--code", __file__)
    assert code == 1
    assert f"{__file__}:2:4: error: bad [syntax.python]" in out
    assert "warning: hm [routing.slow]" in out


def test_lineage_reads_a_lineage_graph(cli: Cli, answer: Answer) -> None:
    edges = [
        GraphEdge(
            id=uuid.uuid4(),
            source="raw.a",
            target="gold.b",
            job="export",
            edge_type="derives",
            origin="run",
            run_count=1,
            latest_run_id=None,
            latest_run_at=None,
        )
    ]
    graph = LineageGraph(entity="raw.a", nodes=[GraphNode(entity="raw.a", depth=0)], edges=edges)
    answer(serve({"/api/v1/lineage/graph": graph}))
    code, out, err = cli("lineage", "raw.a")
    assert code == 0, err
    assert "gold.b  via export" in out and "upstream (none)" in out
    code, out, _ = cli("lineage", "raw.a", "--json")
    assert json.loads(out)["edges"][0]["target"] == "gold.b"


def test_run_views_round_trip_through_json(cli: Cli, answer: Answer) -> None:
    view = run_view()
    answer(serve({"/api/v1/runs/": view}))
    _, out, _ = cli("status", str(RUN), "--json")
    parsed: dict[str, Any] = json.loads(out)
    assert RunView.model_validate(parsed) == view
