"""``templates list`` and ``templates run``: saved jobs, submitted with inputs of the moment."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.options import Cursor, Inputs, Json, Limit, Profile, Timeout, connect

app = typer.Typer(
    help="Job templates: list them, run one.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("list")
def list_templates(
    limit: Limit = 50,
    cursor: Cursor = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """The tenant's templates (the latest version of each), by name."""
    with connect(profile) as api:
        page = api.get("/templates", limit=limit, cursor=cursor)
    if json_out:
        render.emit_json(page)
        return
    items: list[dict[str, Any]] = page["items"]
    if not items:
        render.note("no templates")
        return
    table = render.table("name", "version", "job type", "inputs", "description")
    for item in items:
        job = item.get("job") or {}
        inputs = ", ".join(sorted((job.get("spec") or {}).get("inputs") or {})) or "-"
        render.add_row(
            table,
            str(item["name"]),
            str(item["version"]),
            str(job.get("job_type", "-")),
            inputs,
            str(item.get("description") or ""),
        )
    render.console().print(table)
    if page.get("next_cursor"):
        render.out(f"next cursor: {page['next_cursor']}")


@app.command("run")
def run_template(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The template's name.", show_default=False)
    ],
    inputs: Inputs = None,
    version: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Default: the latest.", show_default=False),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait for the run to end; exit like `wait`.")
    ] = False,
    timeout: Timeout = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """Submit a template's job, with --input key=value merged over its inputs."""
    from controlroom_cli.jobfile import parse_inputs

    body: dict[str, Any] = {"inputs": parse_inputs(inputs or [])}
    if version is not None:
        body["version"] = version
    with connect(profile) as api:
        answer = api.post(f"/templates/{name}/run", body)
    run = str(answer["run_id"])
    if not wait:
        if json_out:
            render.emit_json(answer)
        else:
            render.out(run)
            render.note(f"run {run} queued; follow it with: controlroom wait {run}")
        return
    from controlroom_cli.runs import wait_and_report

    raise typer.Exit(wait_and_report(run, timeout, False, json_out, profile))
