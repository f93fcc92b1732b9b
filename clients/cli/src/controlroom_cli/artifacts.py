"""``artifacts list`` and ``artifacts get``: a run's files, downloaded with their checksum
verified (a file that does not match is deleted, and the command exits 1)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, BinaryIO

import typer

from controlroom_cli import render
from controlroom_cli.errors import ApiProblem, ChecksumMismatch, UsageProblem
from controlroom_cli.options import Json, Profile, RunId, connect, run_id

app = typer.Typer(
    help="A run's artifacts: list them, download one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def list_artifacts(run: RunId, json_out: Json = False, profile: Profile = None) -> None:
    """The run's artifacts: path, size, checksum, id."""
    with connect(profile) as api:
        view = api.get(f"/runs/{run_id(run)}")
    items: list[dict[str, Any]] = view.get("artifacts") or []
    if json_out:
        render.emit_json(items)
        return
    if not items:
        render.note(f"run {view['run_id']} has no artifacts")
        return
    table = render.table("path", "size", "sha256", "id")
    for item in items:
        digest = str(item.get("checksum", "")).removeprefix("sha256:")
        render.add_row(
            table,
            str(item["path"]),
            render.size(item.get("size_bytes")),
            digest[:12],
            str(item["id"]),
        )
    render.console().print(table)


def find(items: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The artifact whose id or path is ``wanted``."""
    for item in items:
        if wanted in (str(item["id"]), str(item["path"])):
            return item
    known = ", ".join(str(i["path"]) for i in items) or "none"
    raise ApiProblem(f"404 Not found: no artifact {wanted!r} in this run (it has: {known})", 404)


def write_verified(
    chunks: Iterable[bytes],
    sink: BinaryIO,
    checksum: str,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Write ``chunks`` to ``sink``; their count and sha256, which must be ``checksum``
    (``sha256:<hex>``) or ChecksumMismatch is raised."""
    digest = hashlib.sha256()
    count = 0
    for chunk in chunks:
        digest.update(chunk)
        sink.write(chunk)
        count += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    actual = f"sha256:{digest.hexdigest()}"
    if actual != checksum:
        raise ChecksumMismatch(f"checksum mismatch: expected {checksum}, got {actual}")
    return count, actual


def save(
    chunks: Iterable[bytes], target: Path, checksum: str, on_chunk: Callable[[int], None] | None
) -> int:
    """Download into ``target`` through a temporary file beside it: ``target`` appears only
    when the bytes match ``checksum``; nothing is left when they do not."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as sink:
            count, _ = write_verified(chunks, sink, checksum, on_chunk)
        os.replace(partial, target)
    except ChecksumMismatch as exc:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{target}: {exc.message}; the file was deleted") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


@app.command("get")
def get(
    run: RunId,
    artifact: Annotated[
        str,
        typer.Argument(metavar="ARTIFACT", help="The artifact's path or id.", show_default=False),
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Where to write it (default: its file name here; - for stdout).",
            show_default=False,
        ),
    ] = None,
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """Download an artifact, verifying its sha256; a mismatch deletes the file, exit 1."""
    with connect(profile) as api:
        item = find(api.get(f"/runs/{run_id(run)}").get("artifacts") or [], artifact)
        chunks = api.download(str(item["id"]))
        if output == "-":
            write_verified(chunks, sys.stdout.buffer, str(item["checksum"]))
            sys.stdout.flush()
            return
        target = Path(output) if output else Path(PurePosixPath(str(item["path"])).name)
        if target.is_dir():
            target = target / PurePosixPath(str(item["path"])).name
        if not target.parent.is_dir():
            raise UsageProblem(f"--output {target}: no such directory {target.parent}")
        count = _with_progress(chunks, target, item, show=not json_out)
    if json_out:
        render.emit_json({"path": str(target), "bytes": count, "artifact": item})
    else:
        render.note(f"{target}: {render.size(count)}, sha256 verified")


def _with_progress(chunks: Iterable[bytes], target: Path, item: dict[str, Any], show: bool) -> int:
    """``save`` with a Rich progress bar on stderr (when it is a terminal)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = render.console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (show and console.is_terminal),
        transient=True,
    ) as progress:
        task = progress.add_task(str(item["path"]), total=item.get("size_bytes"))
        return save(chunks, target, str(item["checksum"]), lambda n: progress.advance(task, n))
