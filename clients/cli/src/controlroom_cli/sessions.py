"""``sessions`` (the tenant's sessions) and ``sessions show`` (one, with its runs)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.options import Cursor, Json, Limit, Profile, connect

app = typer.Typer(
    help="Sessions group runs: list them (no subcommand), or show one.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


@app.callback()
def sessions(
    ctx: typer.Context,
    limit: Limit = 20,
    cursor: Cursor = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """The tenant's sessions, newest first (`sessions show <id>` for one)."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(profile) as api:
        page = api.get("/sessions", limit=limit, cursor=cursor)
    if json_out:
        render.emit_json(page)
        return
    items: list[dict[str, Any]] = page["items"]
    if not items:
        render.note("no sessions")
        return
    table = render.table("session", "name", "status", "runs", "created", no_wrap=("session",))
    for item in items:
        render.add_row(
            table,
            str(item["session_id"]),
            str(item["name"]),
            render.status(item["status"]),
            _counts(item.get("counts") or {}),
            render.when(item.get("created_at")),
        )
    render.console().print(table)
    if page.get("next_cursor"):
        render.out(f"next cursor: {page['next_cursor']}")


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{n} {status}" for status, n in counts.items() if n]
    return ", ".join(shown) or "none"


@app.command("show")
def show(
    session: Annotated[
        str, typer.Argument(metavar="SESSION_ID", help="The session's id.", show_default=False)
    ],
    limit: Limit = 50,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """One session: its status, its run counts, and its latest runs."""
    with connect(profile) as api:
        view = api.get(f"/sessions/{session}")
        runs = api.get("/runs", session_id=session, limit=limit)
    if json_out:
        render.emit_json(
            {**view, "runs": runs["items"], "runs_next_cursor": runs.get("next_cursor")}
        )
        return
    from controlroom_cli.runs import runs_table

    rows: list[tuple[str, str]] = [
        ("session", str(view["session_id"])),
        ("name", str(view["name"])),
    ]
    if view.get("description"):
        rows.append(("description", str(view["description"])))
    rows += [
        ("status", render.status_word(view["status"])),
        ("runs", _counts(view.get("counts") or {})),
        ("created", f"{render.when(view.get('created_at'))}  by {view.get('created_by')}"),
    ]
    render.fields(rows)
    runs_table(runs["items"])
