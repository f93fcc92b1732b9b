"""``status``, ``wait``, ``cancel``, ``runs`` and ``logs``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.errors import ExitCode, UsageProblem
from controlroom_cli.options import Cursor, Json, Profile, RunId, Timeout, connect, run_id
from controlroom_cli.waiting import summary

STATUSES = ("queued", "dispatched", "running", "completed", "failed", "cancelled")
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def status(run: RunId, json_out: Json = False, profile: Profile = None) -> None:
    """A run's status, timing, attempts, error and artifacts."""
    with connect(profile) as api:
        view = api.get(f"/runs/{run_id(run)}")
    if json_out:
        render.emit_json(view)
    else:
        show_run(view)


def show_run(view: dict[str, Any]) -> None:
    outcome = render.status_word(view["status"])
    if view.get("exit_code") is not None:
        outcome += f"  exit {view['exit_code']}"
    if view.get("failure_reason"):
        outcome += f"  ({view['failure_reason']})"
    job = str(view["job_type"])
    job += f"  lane {view['lane']}" if view.get("lane") else ""
    job += f"  priority {view.get('priority', '-')}"
    attempt = f"{view.get('attempt', 1)} of {view.get('max_attempts', 1)}"
    if view.get("executor_kind"):
        attempt += f"  on {view['executor_kind']}"
        if view.get("sandboxed") is not None:
            attempt += " (sandboxed)" if view["sandboxed"] else " (not sandboxed)"
    rows: list[tuple[str, str]] = [
        ("run", str(view["run_id"])),
        ("status", outcome),
        ("job", job),
        ("attempt", attempt),
        ("created", f"{render.when(view.get('created_at'))}  by {view.get('created_by')}"),
    ]
    if view.get("started_at"):
        rows.append(("started", render.when(view["started_at"])))
    if view.get("completed_at"):
        took = render.took(view.get("started_at"), view["completed_at"])
        rows.append(("ended", f"{render.when(view['completed_at'])}  (took {took})"))
    if view["status"] == "queued":
        position = view.get("queue_position")
        reason = view.get("queue_reason") or "next in line"
        rows.append(("queue", f"position {position if position else '-'}: {reason}"))
        if view.get("next_attempt_at"):
            rows.append(("retry at", render.when(view["next_attempt_at"])))
    if view.get("session_id"):
        rows.append(("session", str(view["session_id"])))
    if view.get("error"):
        lines = str(view["error"]).strip().splitlines()
        rows.append(("error", "\n".join(lines[-10:])))
    artifacts = view.get("artifacts") or []
    if artifacts:
        names = ", ".join(str(a["path"]) for a in artifacts[:5])
        more = f" and {len(artifacts) - 5} more" if len(artifacts) > 5 else ""
        rows.append(("artifacts", f"{names}{more}"))
    render.fields(rows)


def wait(
    run: RunId,
    timeout: Timeout = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="Print the run's log lines while waiting.")
    ] = False,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """Wait for a run to end; the exit code says how it ended.

    Follows the run's live event stream (polling if the API refuses the stream). Exit code 0
    completed, 1 failed, 2 cancelled, 3 still not ended after --timeout.
    """
    code = wait_and_report(run_id(run), timeout, logs, json_out, profile)
    raise typer.Exit(code)


def wait_and_report(
    run: str, timeout: float | None, logs: bool, json_out: bool, profile: str | None
) -> int:
    from controlroom_cli.waiting import print_log_lines, wait_for_end

    with connect(profile) as api:
        on_event = print_log_lines if logs and not json_out else None
        outcome = wait_for_end(api, run, timeout, on_event)
    if json_out:
        render.emit_json(outcome.view)
    else:
        render.out(summary(outcome.view, outcome.timed_out))
    return int(outcome.exit_code)


def cancel(run: RunId, json_out: Json = False, profile: Profile = None) -> None:
    """Cancel a run: a queued one at once, a running one once its executor stops it."""
    with connect(profile) as api:
        answer = api.post(f"/runs/{run_id(run)}/cancel")
    if json_out:
        render.emit_json(answer)
    else:
        render.out(f"cancel requested for run {answer['run_id']} (it was {answer['status']})")


def since_value(value: str, now: datetime | None = None) -> str:
    """``--since``: ISO 8601, or a span back from now (``30m``, ``2h``, ``7d``)."""
    if match := _RELATIVE.match(value.strip()):
        span = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return ((now or datetime.now(UTC)) - span).isoformat()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageProblem(
            f"--since {value!r}: expected an ISO 8601 time or a span like 30m, 2h, 7d"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def runs(
    status_filter: Annotated[
        str | None,
        typer.Option(
            "--status", metavar="STATUS", help=f"One of: {', '.join(STATUSES)}.", show_default=False
        ),
    ] = None,
    job_type: Annotated[str | None, typer.Option(metavar="TYPE", show_default=False)] = None,
    lane: Annotated[str | None, typer.Option(metavar="LANE", show_default=False)] = None,
    session: Annotated[
        str | None, typer.Option(metavar="SESSION_ID", help="A session's id.", show_default=False)
    ] = None,
    created_by: Annotated[str | None, typer.Option(metavar="WHO", show_default=False)] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="Created at or after: ISO 8601, or 30m, 2h, 7d ago.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, metavar="N", help="Runs per page.")] = 20,
    cursor: Cursor = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """The tenant's runs, newest first, one page at a time."""
    if status_filter is not None and status_filter not in STATUSES:
        raise UsageProblem(f"--status {status_filter!r}: one of {', '.join(STATUSES)}")
    params = {
        "status": status_filter,
        "job_type": job_type,
        "lane": lane,
        "session_id": session,
        "created_by": created_by,
        "since": since_value(since) if since else None,
        "limit": limit,
        "cursor": cursor,
    }
    with connect(profile) as api:
        page = api.get("/runs", **params)
    if json_out:
        render.emit_json(page)
        return
    runs_table(page["items"])
    if page.get("next_cursor"):
        render.out(f"next cursor: {page['next_cursor']}")


def runs_table(items: list[dict[str, Any]]) -> None:
    if not items:
        render.note("no runs")
        return
    table = render.table(
        "run", "status", "job type", "lane", "created", "took", "exit", no_wrap=("run",)
    )
    for view in items:
        code = view.get("exit_code")
        render.add_row(
            table,
            str(view["run_id"]),
            render.status(view["status"]),
            str(view["job_type"]),
            str(view.get("lane") or "-"),
            render.when(view.get("created_at")),
            render.took(view.get("started_at"), view.get("completed_at")),
            "-" if code is None else str(code),
        )
    render.console().print(table)


def logs(
    run: RunId,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing lines as they come until the run ends."),
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="JSON on stdout: one document; with -f, one object per line.",
        ),
    ] = False,
    profile: Profile = None,
) -> None:
    """A run's log lines (stdout and stderr, as the job wrote them).

    With -f, follows the run's live event stream; a dropped connection is resumed from the
    last event received (Last-Event-ID), so no line is lost or printed twice.
    """
    from controlroom_cli.follow import Follower, log_lines

    run = run_id(run)
    with connect(profile) as api:
        api.get(f"/runs/{run}")  # an unknown run is one clear error, before anything else
        if not follow:
            lines: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                items, cursor = api.events_page(run, cursor)
                for event in items:
                    for stream, line in log_lines(event):
                        if json_out:
                            lines.append(_line(event, stream, line))
                        else:
                            render.out(line)
                if cursor is None:
                    break
            if json_out:
                render.emit_json({"run_id": run, "lines": lines})
            return
        follower = Follower(
            partial(api.event_stream, run),
            partial(api.events_page, run),
            partial(api.run_ended, run),
        )
        for event in follower.events():
            for stream, line in log_lines(event):
                if json_out:
                    render.emit_json_line(_line(event, stream, line))
                else:
                    render.out(line)
    raise typer.Exit(ExitCode.OK)


def _line(event: dict[str, Any], stream: str, line: str) -> dict[str, Any]:
    data = event.get("data") or {}
    return {
        "event_id": event.get("id"),
        "occurred_at": event.get("occurred_at"),
        "attempt": data.get("attempt"),
        "stream": stream,
        "line": line,
    }
