"""A job submitted over HTTP runs through all six services (separate processes; the gateway
as its API and its read-model projector).

Real nats-server, real Postgres, real local callback receiver; checked only through the
public API, the callback and the services' logs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.waiting import eventually

pytestmark = pytest.mark.e2e


def job(receiver: CallbackReceiver, code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "diagram_export",
        "spec": {
            "text": "Export the diagrams",
            "inputs": {"source": "supabase://raw.diagrams", "target": "supabase://gold.diagrams"},
        },
        "code": {"files": [{"path": "jobs/export.py", "content": code}]},
        "created_by": "continue-ide-plugin",
        "callbacks": {"on_complete": receiver.url("complete"), "on_fail": receiver.url("fail")},
    }
    body.update(overrides)
    return body


async def wait_for_status(api: httpx.AsyncClient, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        if view["status"] in statuses:
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run stayed {view['status']}: {view}")
        await asyncio.sleep(0.05)


async def test_completed_run_calls_back_and_records_lineage(
    api: httpx.AsyncClient, receiver: CallbackReceiver, sandboxed: bool
) -> None:
    response = await api.post(
        "/api/v1/jobs/run", json=job(receiver, "print('exported 3 diagrams')")
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]

    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "completed", view
    assert view["exit_code"] == 0 and view["sandboxed"] is sandboxed and view["attempt"] == 1
    assert view["image"] == ("localhost/controlroom-python:1" if sandboxed else None)
    assert view["started_at"] and view["completed_at"]

    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/complete"
    assert callback.json()["status"] == "completed"
    assert callback.json()["summary"] == "exported 3 diagrams"
    assert callback.headers["webhook-id"] and callback.headers["webhook-signature"].startswith(
        "v1,"
    )

    async def edge() -> dict[str, Any] | None:
        graph: dict[str, Any] = (
            await api.get("/api/v1/lineage/graph", params={"entity": "raw.diagrams"})
        ).json()
        return graph if graph["downstream"] else None

    graph = await eventually(edge, what="the lineage edge")
    assert graph["downstream"] == [
        {"entity": "gold.diagrams", "job_id": run_id, "job": "diagram_export", "depth": 1}
    ]


async def test_failing_run_reports_exit_code_and_calls_on_fail(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    code = "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)"
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "failed"
    assert view["exit_code"] == 3 and view["failure_reason"] == "exit_code"
    assert "bad input" in view["error"]
    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/fail"
    assert callback.json()["status"] == "failed" and callback.json()["exit_code"] == 3


async def test_job_routed_to_kubernetes_waits_saying_there_is_no_executor(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    """executor-k8s without a cluster reports in as not ready: its runs wait, queued, with
    the reason shown, and can be cancelled (nothing is tried on an executor that cannot run)."""
    body = job(receiver, "print(1)", job_type="schema_migration")
    run_id = (await api.post("/api/v1/jobs/run", json=body)).json()["run_id"]

    async def explained() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if view["queue_reason"] and view["executor_kind"] else None

    view = await eventually(explained, what="a queue reason")
    assert view["status"] == "queued" and view["executor_kind"] == "k8s"
    assert view["queue_reason"] == "no_executor" and view["queue_position"] >= 1
    assert (await api.post(f"/api/v1/runs/{run_id}/cancel")).status_code == 202
    view = await wait_for_status(api, run_id, "cancelled")
    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/fail" and callback.json()["status"] == "cancelled"


async def test_bad_input_is_refused_before_anything_is_queued(api: httpx.AsyncClient) -> None:
    malformed = await api.post("/api/v1/jobs/run", json={"job_type": "diagram_export"})
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in malformed.json()["errors"]} >= {"body.spec", "body.code"}
    unknown = await api.post(
        "/api/v1/jobs/run",
        json={
            "job_type": "nope",
            "spec": {"text": "x"},
            "code": {"files": [{"path": "a.py", "content": ""}]},
            "created_by": "t",
        },
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.job_type"
    missing = await api.get("/api/v1/runs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


async def test_one_run_is_one_trace_across_services(
    api: httpx.AsyncClient, receiver: CallbackReceiver, logs_dir: Path
) -> None:
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, "print(1)"))).json()["run_id"]
    await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    wanted = {"gateway", "scheduler", "executor-docker", "lineage"}

    async def traces_by_service() -> dict[str, set[str]] | None:
        traces: dict[str, set[str]] = {}
        for path in logs_dir.glob("*.log"):
            for line in path.read_text().splitlines():
                if run_id in line and line.startswith("{"):
                    entry = json.loads(line)
                    if "trace_id" in entry:
                        traces.setdefault(entry["service"], set()).add(entry["trace_id"])
        return traces if wanted <= set(traces) else None

    traces = await eventually(traces_by_service, interval=0.1, what=f"log lines from {wanted}")
    assert wanted <= set(traces), traces
    assert len(set().union(*traces.values())) == 1, traces


async def test_live_event_stream_follows_a_run_and_resumes_after_a_disconnect(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    code = "import time\ntime.sleep(1.5)\nprint('slow done')"
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    url = f"/api/v1/runs/{run_id}/events/stream"
    first: list[tuple[int, str]] = []
    async with api.stream("GET", url) as response:
        assert response.status_code == 200
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "id" in fields:  # a blank line ends one event
                first.append((int(fields["id"]), fields.get("event", "")))
            fields = {}
            if first and first[-1][1] == "started":
                break  # disconnect while the job is still running
    assert first[-1][1] == "started"
    resumed = await api.get(url, headers={"Last-Event-ID": str(first[-1][0])}, timeout=30)
    assert resumed.status_code == 200, resumed.text
    rest = [line[7:] for line in resumed.text.splitlines() if line.startswith("event: ")]
    assert rest, (first, resumed.text)
    assert rest[-1] == "completed" and "started" not in rest


async def test_cancel_terminates_a_running_job_and_is_idempotent(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    code = "import time\nprint('working', flush=True)\ntime.sleep(60)"
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    await wait_for_status(api, run_id, "running")
    first = await api.post(f"/api/v1/runs/{run_id}/cancel")
    assert first.status_code == 202 and first.json()["status"] == "running"
    again = await api.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 202
    view = await wait_for_status(api, run_id, "cancelled", "completed", "failed")
    assert view["status"] == "cancelled" and view["completed_at"]
    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/fail" and callback.json()["status"] == "cancelled"
    assert (await api.post(f"/api/v1/runs/{run_id}/cancel")).status_code == 202

    done = (await api.post("/api/v1/jobs/run", json=job(receiver, "print(1)"))).json()["run_id"]
    await wait_for_status(api, done, "completed")
    refused = await api.post(f"/api/v1/runs/{done}/cancel")
    assert refused.status_code == 409 and refused.json()["run_status"] == "completed"
    assert refused.headers["content-type"] == "application/problem+json"
    missing = await api.post("/api/v1/runs/00000000-0000-0000-0000-000000000001/cancel")
    assert missing.status_code == 404


async def test_both_executors_report_in(api: httpx.AsyncClient) -> None:
    async def both_kinds() -> dict[str, dict[str, Any]] | None:
        # Heartbeats are asynchronous: the gateway's roll call brings them within a round
        # trip of its start, which may still be just after it reported ready.
        rows = (await api.get("/api/v1/executors")).json()
        by_kind = {row["kind"]: row for row in rows}
        return by_kind if {"docker", "k8s"} <= by_kind.keys() else None

    by_kind = await eventually(both_kinds, timeout=10, what="both executor kinds listed")
    assert by_kind["docker"]["ready"] is True and by_kind["docker"]["capacity"] >= 1
    assert by_kind["k8s"]["ready"] is False  # no cluster configured here


async def test_validate_checks_routing_against_live_executors(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    good = await api.post("/api/v1/jobs/validate", json=job(receiver, "print('fine')"))
    assert good.json() == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "executor_kind": "docker",
        "image": "localhost/controlroom-python:1",
    }
    k8s = job(receiver, "print(1)", job_type="schema_migration")
    report = (await api.post("/api/v1/jobs/validate", json=k8s)).json()
    assert report["valid"] is False
    assert [e["code"] for e in report["errors"]] == ["route.no_executor"]


async def test_job_outputs_and_logs_become_downloadable_artifacts(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    code = (
        "import os\n"
        "os.makedirs('output', exist_ok=True)\n"
        "open('output/report.csv', 'w').write('rows,42\\n')\n"
        "print('report written')\n"
    )
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    await wait_for_status(api, run_id, "completed")

    async def with_artifacts() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if len(view["artifacts"]) == 2 else None

    view = await eventually(with_artifacts, what="both artifacts in the run view")
    paths = sorted(a["path"] for a in view["artifacts"])
    assert paths == ["logs/stdout.log", "output/report.csv"]
    report = next(a for a in view["artifacts"] if a["path"] == "output/report.csv")
    assert (await api.get(report["url"])).content == b"rows,42\n"
    assert view["logs_url"] is not None
    assert (await api.get(view["logs_url"])).text == "report written\n"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    stack: Any, tmp_path: Path
) -> None:
    """Property-based requests generated from /openapi.json, sent with a valid admin token
    (the role that may call every endpoint)."""
    import subprocess

    from controlroom_devstack.infra import venv_bin
    from controlroom_gateway.auth import mint_token

    from .conftest import SECRET

    token = mint_token(SECRET, tenant_id="acme", subject="fuzz", role="admin", ttl_seconds=3600)

    result = subprocess.run(
        [
            str(venv_bin("st")),
            "run",
            f"{stack.url('gateway')}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "25",
            "--generation-with-security-parameters",
            "false",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "passed" in result.stdout


async def test_a_run_whose_executor_is_killed_is_resumed_or_retried_to_completion(
    api: httpx.AsyncClient, receiver: CallbackReceiver, stack: Any, sandboxed: bool
) -> None:
    """kill -9 of executor-docker mid-run, then its restart. A container outlives its
    executor: the restarted executor (same identity) finds it by its labels, follows it to its
    end and reports it, attempt 1, never lost. A local job dies with its executor: the
    attempt is reported lost and the retry completes. Either way one callback, at the end."""
    import signal

    code = (
        "import os, time\n"
        "print('attempt', os.environ['CONTROLROOM_ATTEMPT'], flush=True)\n"
        "if os.environ['CONTROLROOM_ATTEMPT'] == '1':\n"
        "    time.sleep(4)\n"
        "print('done', flush=True)\n"
    )
    body = job(receiver, code, retry={"backoff_seconds": 0})
    run_id = (await api.post("/api/v1/jobs/run", json=body)).json()["run_id"]
    await wait_for_status(api, run_id, "running")
    executor = stack.processes["executor-docker"]
    executor.send_signal(signal.SIGKILL)
    executor.wait(10)
    stack.restart("executor-docker")

    async def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if view["status"] in ("completed", "failed") else None

    view = await eventually(finished, timeout=60, interval=0.2, what="the run's end")
    assert view["status"] == "completed", view
    if sandboxed:
        assert view["attempt"] == 1, view
        assert [a["status"] for a in view["attempts"]] == ["completed"]
        log = (await api.get(view["logs_url"])).text
        assert log.splitlines() == ["attempt 1", "done"]
    else:
        assert view["attempt"] == 2, view
        first, second = view["attempts"]
        assert (first["status"], first["failure_reason"]) == ("failed", "lost")
        assert second["status"] == "completed"
    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/complete" and callback.json()["attempt"] == view["attempt"]
    assert len([r for r in receiver.received if r.json()["run_id"] == run_id]) == 1


async def test_a_job_finds_no_signing_secret_anywhere_it_can_look(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    """The executor runs hostile code and is never given the JWT or webhook secret; the job
    reads every process environment it can see (its parent's among them, as one did before)
    and finds neither, nor the platform's own settings."""
    from .conftest import SECRET

    code = (
        "import os\n"
        "found = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        env = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    found += [e.split(b'=', 1)[0].decode() for e in env.split(b'\\0') if e]\n"
        "print('read', len(found), 'variables')\n"
        "print('platform found' if any('SECRET' in n or 'NATS' in n or 'DATABASE' in n\n"
        "      for n in found) else 'nothing of the platform')\n"
    )
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "completed", view
    log = (await api.get(view["logs_url"])).text
    assert "read 0 variables" not in log  # it could read its own environment at least
    assert log.rstrip().endswith("nothing of the platform"), log
    assert SECRET not in log


def _git(*args: str, cwd: Path) -> None:
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


async def test_a_job_runs_over_its_checked_out_repository_or_fails_with_checkout(
    api: httpx.AsyncClient, receiver: CallbackReceiver, tmp_path: Path
) -> None:
    """The repository is checked out at its ref, then the code files are laid over it."""
    origin = tmp_path / "origin"
    origin.mkdir()
    _git("init", "-q", "-b", "main", cwd=origin)
    (origin / "data.txt").write_text("from the repository\n")
    (origin / "run.py").write_text("print('overwritten by the code files')\n")
    _git("add", ".", cwd=origin)
    _git("commit", "-q", "-m", "one", cwd=origin)
    _git("tag", "v1", cwd=origin)
    code = "print(open('data.txt').read().strip())\n"
    body = job(receiver, code, repo={"url": origin.as_uri(), "ref": "v1"})
    body["code"] = {"files": [{"path": "run.py", "content": code}]}
    run_id = (await api.post("/api/v1/jobs/run", json=body)).json()["run_id"]
    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "completed", view
    assert (await api.get(view["logs_url"])).text.strip() == "from the repository"

    missing = job(receiver, code, repo={"url": origin.as_uri(), "ref": "no-such-tag"})
    run_id = (await api.post("/api/v1/jobs/run", json=missing)).json()["run_id"]
    view = await wait_for_status(api, run_id, "failed")
    assert view["failure_reason"] == "checkout", view
    assert "no-such-tag" in view["error"], view
