"""The ``controlroom`` command line (issue [8]) against a whole Control Room: the real console
script in a subprocess, configured by CONTROLROOM_URL and CONTROLROOM_TOKEN as CI would be.

Exit codes checked as documented (docs/cli.md): 0 completed, 1 failed or invalid, 2 cancelled,
3 timeout, 4 usage, 5 API error; errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlroom_contracts.api import RunPage, RunView, SubmitResponse, ValidationReport
from controlroom_devstack.stack import ServiceStack
from controlroom_devstack.waiting import eventually
from controlroom_gateway.auth import mint_token

from ..conftest import SECRET
from .proxy import CuttingProxy

pytestmark = pytest.mark.e2e

SCRIPT = Path(sys.executable).with_name("controlroom")
RUN_TIMEOUT = 120
SLEEPER = "import time\nprint('waiting', flush=True)\ntime.sleep(600)\n"
TICKS = 40
TICKER = (
    "import time\n"
    f"for i in range({TICKS}):\n"
    "    print(f'tick {i}', flush=True)\n"
    "    time.sleep(0.25)\n"
)


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def one_error_line(self) -> str:
        """The single line a failing command wrote to stderr (never a traceback)."""
        assert "Traceback" not in self.err, self.err
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


@pytest.fixture(scope="module")
def environment(
    stack: ServiceStack, token: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """What CI would set; no profile file of the machine's leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg"))
    env["CONTROLROOM_URL"] = stack.url("gateway")
    env["CONTROLROOM_TOKEN"] = token
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


async def controlroom(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = RUN_TIMEOUT
) -> Done:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: make install puts the console script there"
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


def write_job(directory: Path, code: str, *, name: str = "cli-e2e", **spec_inputs: str) -> Path:
    """A job file whose code is a file beside it (``file:``), as a repository would keep it."""
    (directory / "main.py").write_text(code)
    inputs = "".join(f"\n    {k}: {v}" for k, v in spec_inputs.items())
    path = directory / "job.yaml"
    path.write_text(
        "job_type: diagram_export\n"
        f"name: {name}\n"
        "spec:\n"
        "  text: A job the CLI's end-to-end tests submit\n"
        f"  inputs:{inputs or ' {}'}\n"
        "code:\n"
        "  files:\n"
        "    - path: jobs/main.py\n"
        "      file: main.py\n"
    )
    return path


async def submitted(env: dict[str, str], job: Path) -> str:
    done = await controlroom(env, "submit", str(job), "--json")
    assert done.code == 0, done.err
    return str(SubmitResponse.model_validate(done.json()).run_id)


async def reaches(env: dict[str, str], run_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view: dict[str, Any] = (await controlroom(env, "status", run_id, "--json")).json()
        return view if view["status"] == status else None

    return await eventually(check, timeout=RUN_TIMEOUT, interval=0.2, what=f"{run_id} {status}")


async def test_submit_wait_logs_and_artifacts_of_a_completed_run(
    environment: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import json, os\n"
        "for n in (1, 2, 3):\n"
        "    print(f'counted {n}', flush=True)\n"
        "os.makedirs('output', exist_ok=True)\n"
        "json.dump({'orders': 3}, open('output/summary.json', 'w'))\n"
    )
    job = write_job(
        tmp_path, code, source="supabase://raw.cli_orders", target="supabase://gold.cli_orders"
    )
    valid = await controlroom(environment, "validate", str(job))
    assert valid.code == 0 and valid.out.startswith(f"{job}: valid"), valid

    run_id = await submitted(environment, job)
    waited = await controlroom(environment, "wait", run_id, "--timeout", str(RUN_TIMEOUT), "--json")
    assert waited.code == 0, waited.err
    view = RunView.model_validate(waited.json())
    assert view.status == "completed" and str(view.run_id) == run_id

    logs = await controlroom(environment, "logs", run_id)
    assert logs.code == 0 and logs.out.splitlines() == ["counted 1", "counted 2", "counted 3"]
    as_json = (await controlroom(environment, "logs", run_id, "--json")).json()
    assert [line["line"] for line in as_json["lines"]] == ["counted 1", "counted 2", "counted 3"]
    assert {line["stream"] for line in as_json["lines"]} == {"stdout"}

    listed = await controlroom(environment, "artifacts", "list", run_id, "--json")
    artifacts = {a["path"]: a for a in listed.json()}
    assert "output/summary.json" in artifacts, artifacts
    target = tmp_path / "downloaded.json"
    got = await controlroom(
        environment, "artifacts", "get", run_id, "output/summary.json", "-o", str(target)
    )
    assert got.code == 0, got.err
    assert json.loads(target.read_text()) == {"orders": 3}
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert artifacts["output/summary.json"]["checksum"] == f"sha256:{digest}"

    human = await controlroom(environment, "status", run_id)
    assert human.code == 0 and "completed  exit 0" in human.out
    page = await controlroom(environment, "runs", "--created-by", "controlroom-cli", "--json")
    assert run_id in {str(r.run_id) for r in RunPage.model_validate(page.json()).items}

    async def lineage() -> Done | None:
        done = await controlroom(environment, "lineage", "supabase://raw.cli_orders")
        return done if "gold.cli_orders" in done.out else None

    tree = await eventually(lineage, timeout=30, interval=0.5, what="the lineage edge")
    assert "↓ downstream" in tree.out and "via cli-e2e" in tree.out
    mermaid = await controlroom(environment, "lineage", "raw.cli_orders", "--format", "mermaid")
    assert mermaid.out.startswith("flowchart") and "gold.cli_orders" in mermaid.out


async def test_a_job_that_exits_3_makes_submit_wait_exit_1(
    environment: dict[str, str], tmp_path: Path
) -> None:
    job = write_job(tmp_path, "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n")
    done = await controlroom(environment, "submit", "--wait", str(job))
    assert done.code == 1, done
    run_id = done.out.split()[1]
    assert done.out.startswith(f"run {run_id} failed: exit_code 3") and "bad input" in done.out
    again = await controlroom(environment, "wait", run_id, "--json")
    assert again.code == 1 and again.json()["exit_code"] == 3
    finished = await controlroom(environment, "cancel", run_id)
    assert finished.code == 5
    assert finished.one_error_line().startswith("error: 409 Run already finished")


async def test_wait_times_out_with_3_and_a_cancelled_run_exits_2(
    environment: dict[str, str], tmp_path: Path
) -> None:
    run_id = await submitted(environment, write_job(tmp_path, SLEEPER))
    await reaches(environment, run_id, "running")
    timed_out = await controlroom(environment, "wait", run_id, "--timeout", "1")
    assert timed_out.code == 3, timed_out
    assert timed_out.out == f"run {run_id} is still running: stopped waiting\n"
    cancelled = await controlroom(environment, "cancel", run_id)
    assert cancelled.code == 0 and "cancel requested" in cancelled.out
    waited = await controlroom(environment, "wait", run_id, "--json")
    assert waited.code == 2 and waited.json()["status"] == "cancelled"
    again = await controlroom(environment, "cancel", run_id)  # idempotent
    assert again.code == 0 and again.out.endswith("(it was cancelled)\n")


async def test_invalid_job_files_are_reported_at_their_lines(
    environment: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("job_type: diagram_export\nspec:\n  text: [unclosed\ncode: {}\n")
    syntax = await controlroom(environment, "validate", str(broken))
    assert syntax.code == 1 and syntax.out == ""
    assert syntax.one_error_line() == (
        f"error: {broken}:4:5: not valid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 3, column 9)"
    )

    job = tmp_path / "job.yaml"
    (tmp_path / "main.py").write_text("def broken(:\n    pass\n")
    job.write_text(
        "job_type: diagram_export\n"
        "spec:\n"
        "  inputs: {}\n"
        "code:\n"
        "  files:\n"
        "    - path: jobs/main.py\n"
        "      file: main.py\n"
    )
    report = await controlroom(environment, "validate", str(job))
    assert report.code == 1, report
    lines = report.out.splitlines()
    assert f"{job}:2:1: error: body.spec.text: Field required [schema.missing]" in lines
    assert any(line.startswith(f"{tmp_path / 'main.py'}:1:") for line in lines), lines
    assert lines[-1].startswith(f"{job}: invalid")
    as_json = await controlroom(environment, "validate", str(job), "--json")
    document = as_json.json()
    # The API's report, each issue with its place in the files on this disk added.
    locations = [issue.pop("location") for issue in document["errors"]]
    assert as_json.code == 1 and not ValidationReport.model_validate(document).valid
    assert f"{job}:2:1" in locations

    refused = await controlroom(environment, "submit", str(job))
    assert refused.code == 1
    assert refused.one_error_line().startswith(f"error: {job}:2:1: 422 ")
    assert "body.spec.text: Field required" in refused.err


async def test_api_errors_are_one_line_with_exit_5(
    environment: dict[str, str], stack: ServiceStack
) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    missing = await controlroom(environment, "status", unknown)
    assert (missing.code, missing.out) == (5, "")
    assert missing.one_error_line() == f"error: 404 Run not found: run {unknown} not found"

    forged = mint_token("x" * 40, tenant_id="acme", subject="e2e", role="operator", ttl_seconds=60)
    wrong = await controlroom({**environment, "CONTROLROOM_TOKEN": forged}, "runs")
    assert wrong.code == 5
    assert wrong.one_error_line().startswith("error: 401 Unauthorized: invalid token")

    no_token = {k: v for k, v in environment.items() if k != "CONTROLROOM_TOKEN"}
    anonymous = await controlroom(no_token, "runs")
    assert anonymous.code == 5 and "no token configured" in anonymous.one_error_line()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    refused = await controlroom({**environment, "CONTROLROOM_URL": closed}, "status", unknown)
    assert refused.code == 5
    assert refused.one_error_line() == f"error: cannot reach {closed}: connection refused"

    usage = await controlroom(environment, "wait")
    assert usage.code == 4 and usage.one_error_line().startswith("error: Missing argument")
    assert stack.url("gateway") == environment["CONTROLROOM_URL"]


async def test_a_minted_token_is_accepted_with_its_role(environment: dict[str, str]) -> None:
    minting = {**environment, "CONTROLROOM_JWT_SECRET": SECRET}
    viewer = await controlroom(minting, "token", "--tenant", "acme", "--role", "viewer")
    assert viewer.code == 0
    as_viewer = {**environment, "CONTROLROOM_TOKEN": viewer.out.strip()}
    assert (await controlroom(as_viewer, "runs", "--limit", "1")).code == 0
    denied = await controlroom(as_viewer, "cancel", "00000000-0000-0000-0000-000000000000")
    assert denied.code == 5
    assert denied.one_error_line().startswith("error: 403 Forbidden: role viewer may not")


async def test_sessions_and_templates(
    environment: dict[str, str], stack: ServiceStack, tmp_path: Path
) -> None:
    admin = mint_token(SECRET, tenant_id="acme", subject="e2e", role="admin", ttl_seconds=600)
    async with httpx.AsyncClient(
        base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {admin}"}
    ) as api:
        session = (await api.post("/api/v1/sessions", json={"name": "cli session"})).json()
        template = {
            "name": "cli-template",
            "description": "Said by the CLI tests",
            "job": {
                "job_type": "diagram_export",
                "spec": {"text": "Say a word", "inputs": {"word": "hello"}},
                "code": {"files": [{"path": "a.py", "content": "print('templated')"}]},
                "created_by": "e2e",
            },
        }
        assert (await api.post("/api/v1/templates", json=template)).status_code == 201
    session_id = session["session_id"]
    job = write_job(tmp_path, "print('in a session')\n")
    joined = await controlroom(environment, "submit", str(job), "--session", session_id, "--wait")
    assert joined.code == 0, joined

    listed = await controlroom(environment, "sessions", "--json")
    assert session_id in {s["session_id"] for s in listed.json()["items"]}
    shown = await controlroom(environment, "sessions", "show", session_id, "--json")
    assert shown.code == 0 and len(shown.json()["runs"]) == 1
    human = await controlroom(environment, "sessions", "show", session_id)
    assert "cli session" in human.out and "completed" in human.out

    templates = await controlroom(environment, "templates", "list", "--json")
    assert "cli-template" in {t["name"] for t in templates.json()["items"]}
    ran = await controlroom(
        environment, "templates", "run", "cli-template", "--input", "word=bye", "--wait", "--json"
    )
    assert ran.code == 0, ran.err
    assert ran.json()["status"] == "completed"


@pytest.fixture
async def proxy(stack: ServiceStack) -> AsyncIterator[CuttingProxy]:
    cutting = CuttingProxy(int(stack.url("gateway").rsplit(":", 1)[1]))
    await cutting.start()
    yield cutting
    await cutting.stop()


async def test_logs_follow_resumes_a_cut_stream_without_losing_or_repeating_lines(
    environment: dict[str, str], proxy: CuttingProxy, tmp_path: Path
) -> None:
    run_id = await submitted(environment, write_job(tmp_path, TICKER))
    env = {**environment, "CONTROLROOM_URL": proxy.url}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "logs",
        "-f",
        run_id,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    try:
        while len(lines) < 5:
            line = await asyncio.wait_for(process.stdout.readline(), RUN_TIMEOUT)
            assert line, "logs -f ended before the run printed 5 lines"
            lines.append(line.decode().rstrip("\n"))
        proxy.cut_next()
        rest, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines += rest.decode().splitlines()
    assert process.returncode == 0, err.decode()
    assert proxy.cuts == 1, "the stream was never cut: the run ended first"
    assert lines == [f"tick {i}" for i in range(TICKS)]
    resumed = proxy.stream_requests[-1].lower()
    assert len(proxy.stream_requests) >= 2 and b"last-event-id: " in resumed
