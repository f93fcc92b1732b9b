"""``submit`` and ``validate``: a job from a file (YAML or JSON) and options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.errors import ApiProblem, ExitCode, InvalidJob
from controlroom_cli.options import Inputs, Json, Profile, Timeout, connect

if TYPE_CHECKING:
    from controlroom_cli.jobfile import Job

JobFile = Annotated[
    str | None,
    typer.Argument(
        metavar="JOB_FILE",
        help="The job, YAML or JSON (the body of POST /jobs/run); options override it.",
        show_default=False,
    ),
]
JobType = Annotated[
    str | None, typer.Option("--type", metavar="TYPE", help="The job type.", show_default=False)
]
Spec = Annotated[
    str | None,
    typer.Option(
        "--spec", metavar="TEXT", help="The spec's text (what the job does).", show_default=False
    ),
]
Code = Annotated[
    list[str] | None,
    typer.Option(
        "--code",
        "-c",
        metavar="PATH",
        help="A code file to send (repeatable); sent under its path when it is relative, "
        "else under its name.",
        show_default=False,
    ),
]
Name = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="The job's name (its lineage is recorded under it).",
        show_default=False,
    ),
]
Lane = Annotated[
    str | None, typer.Option(metavar="LANE", help="The lane to queue in.", show_default=False)
]
Session = Annotated[
    str | None,
    typer.Option(metavar="SESSION_ID", help="A session's id to join.", show_default=False),
]
CreatedBy = Annotated[
    str | None,
    typer.Option(
        metavar="WHO",
        help="Who submits (default: the file's, else controlroom-cli).",
        show_default=False,
    ),
]


def _job(
    job_file: str | None,
    job_type: str | None,
    spec: str | None,
    inputs: list[str] | None,
    code: list[str] | None,
    name: str | None,
    lane: str | None,
    session: str | None,
    created_by: str | None,
) -> Job:
    from controlroom_cli import jobfile

    return jobfile.build(
        job_file,
        job_type=job_type,
        spec=spec,
        inputs=inputs,
        code=code,
        name=name,
        lane=lane,
        session=session,
        created_by=created_by,
    )


def submit(
    job_file: JobFile = None,
    job_type: JobType = None,
    spec: Spec = None,
    inputs: Inputs = None,
    code: Code = None,
    name: Name = None,
    lane: Lane = None,
    session: Session = None,
    created_by: CreatedBy = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            help="Submitting again with the same key (24 h) returns the same run.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait for the run to end; exit like `wait`.")
    ] = False,
    logs: Annotated[
        bool,
        typer.Option("--logs", help="Print the run's log lines while waiting (implies --wait)."),
    ] = False,
    timeout: Timeout = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """Submit a job; prints its run id (with --wait, how it ended).

    Without a job file, --type, --spec and --code are needed. In CI:
    `controlroom submit --wait job.yaml` exits 0 completed, 1 failed, 2 cancelled, 3 timeout.
    """
    job = _job(job_file, job_type, spec, inputs, code, name, lane, session, created_by)
    wait = wait or logs
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with connect(profile) as api:
        try:
            answer = api.post("/jobs/run", job.body, headers=headers)
        except ApiProblem as problem:
            raise _refused(problem, job) from None
    run = str(answer["run_id"])
    if not wait:
        if json_out:
            render.emit_json(answer)
        else:
            render.out(run)
            render.note(f"run {run} queued; follow it with: controlroom wait {run}")
        return
    if not json_out:
        render.note(f"run {run} queued; waiting for it to end")
    from controlroom_cli.runs import wait_and_report

    raise typer.Exit(wait_and_report(run, timeout, logs, json_out, profile))


def _refused(problem: ApiProblem, job: Job) -> Exception:
    """A 422 is an invalid job (exit 1), at the first bad field's place in the job file."""
    if problem.status != 422:
        return problem
    errors = problem.problem.get("errors") if isinstance(problem.problem, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    where = job.where(first) if job.source else None
    return InvalidJob(f"{where}: {problem.message}" if where else problem.message)


def validate(
    job_file: JobFile = None,
    job_type: JobType = None,
    spec: Spec = None,
    inputs: Inputs = None,
    code: Code = None,
    name: Name = None,
    lane: Lane = None,
    session: Session = None,
    created_by: CreatedBy = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """Check a job without running it: every problem, at file:line:column; exit 1 if invalid.

    Asks the API's pre-flight (POST /jobs/validate): the schema, the syntax of each code
    file, sizes, inputs, callbacks and whether an executor can run the job type now.
    """
    job = _job(job_file, job_type, spec, inputs, code, name, lane, session, created_by)
    with connect(profile) as api:
        report: dict[str, Any] = api.post("/jobs/validate", job.body)
    for kind in ("errors", "warnings"):
        for issue in report.get(kind) or []:
            issue["location"] = job.where(issue)
    if json_out:
        render.emit_json(report)
    else:
        for kind, label in (("errors", "error"), ("warnings", "warning")):
            for issue in report.get(kind) or []:
                render.out(issue_line(issue, label))
        render.out(verdict(report, job.source or "the job"))
    raise typer.Exit(ExitCode.OK if report.get("valid") else ExitCode.FAILED)


def issue_line(issue: dict[str, Any], label: str) -> str:
    """``job.yaml:3:1: error: body.spec.text: Field required [schema.missing]``."""
    where = f"{issue['location']}: " if issue.get("location") else ""
    field = f"{issue['field']}: " if issue.get("field") and not issue.get("file") else ""
    return f"{where}{label}: {field}{issue.get('message')} [{issue.get('code')}]"


def verdict(report: dict[str, Any], source: str) -> str:
    errors, warnings = len(report.get("errors") or []), len(report.get("warnings") or [])
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    if not report.get("valid"):
        return f"{source}: invalid ({counts})"
    runs_on = f"; runs on {report['executor_kind']}" if report.get("executor_kind") else ""
    image = f" in {report['image']}" if report.get("image") else ""
    return f"{source}: valid ({counts}){runs_on}{image}"
