"""A job submitted over HTTP runs through all six services (separate processes; the gateway
as its API and its read-model projector).

Real nats-server, real Postgres, real local callback receiver; checked only through the
public API, the callback and the services' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    response = await api.post(
        "/api/v1/jobs/run", json=job(receiver, "print('exported 3 diagrams')")
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]

    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "completed", view
    assert view["exit_code"] == 0 and view["sandboxed"] is False and view["attempt"] == 1
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
        {"entity": "gold.diagrams", "job_id": run_id, "job_type": "diagram_export", "depth": 1}
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
    assert good.json() == {"valid": True, "errors": [], "warnings": []}
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


async def test_a_run_whose_executor_is_killed_is_lost_and_retried_to_completion(
    api: httpx.AsyncClient, receiver: CallbackReceiver, stack: Any
) -> None:
    """kill -9 of executor-docker mid-run: the scheduler decides the attempt lost (the
    executor went silent, or came back without it) and runs it again; the retry completes.
    Only one callback is made, after the last attempt."""
    import os
    import signal

    code = (
        "import os, time\n"
        "print('attempt', os.environ['CONTROLROOM_ATTEMPT'], flush=True)\n"
        "if os.environ['CONTROLROOM_ATTEMPT'] == '1':\n"
        "    time.sleep(300)\n"
    )
    body = job(receiver, code, retry={"backoff_seconds": 0})
    run_id = (await api.post("/api/v1/jobs/run", json=body)).json()["run_id"]
    await wait_for_status(api, run_id, "running")
    executor = stack.processes["executor-docker"]
    job_processes = _children(executor.pid)
    executor.send_signal(signal.SIGKILL)
    executor.wait(10)
    for pid in job_processes:  # the local backend's job outlives its executor (issue [4])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    stack.restart("executor-docker")

    async def retried_and_done() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        return view if view["status"] in ("completed", "failed") else None

    view = await eventually(retried_and_done, timeout=60, interval=0.2, what="the retry's end")
    assert view["status"] == "completed" and view["attempt"] == 2, view
    first, second = view["attempts"]
    assert (first["status"], first["failure_reason"]) == ("failed", "lost")
    assert second["status"] == "completed"
    callback = await receiver.wait_for(lambda r: r.json()["run_id"] == run_id)
    assert callback.path == "/complete" and callback.json()["attempt"] == 2
    assert len([r for r in receiver.received if r.json()["run_id"] == run_id]) == 1


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children


async def test_a_job_finds_no_signing_secret_in_its_executors_environment(
    api: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    """The executor runs hostile code; it is never given the JWT or webhook secret, so a job
    that reads its parent's environment (as one did before) finds neither."""
    from .conftest import SECRET

    code = (
        "import os\n"
        "env = open(f'/proc/{os.getppid()}/environ', 'rb').read().split(b'\\0')\n"
        "names = sorted(e.split(b'=', 1)[0].decode() for e in env if e)\n"
        "print('\\n'.join(names))\n"
        "print('secret found' if any(b'SECRET' in e for e in env) else 'no secret')\n"
    )
    run_id = (await api.post("/api/v1/jobs/run", json=job(receiver, code))).json()["run_id"]
    view = await wait_for_status(api, run_id, "completed", "failed")
    assert view["status"] == "completed", view
    log = (await api.get(view["logs_url"])).text
    assert "CONTROLROOM_NATS_URL" in log  # it did read the executor's environment
    assert log.rstrip().endswith("no secret"), log
    assert SECRET not in log and "CONTROLROOM_JWT_SECRET" not in log
