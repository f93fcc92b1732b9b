"""Human output (Rich, imported when first used) and JSON output (one document on stdout)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

STATUS_STYLES = {
    "queued": "yellow",
    "dispatched": "cyan",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "active": "blue",
}


def emit_json(document: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def emit_json_line(document: Any) -> None:
    """One JSON object on one line (a stream of them: ``logs -f --json``)."""
    sys.stdout.write(json.dumps(document, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A remark for the person at the terminal, on stderr (stdout stays for data)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


PIPE_WIDTH = 160
"""Columns of output that goes to a file or a pipe (Rich would assume 80)."""


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    made = Console(stderr=stderr, highlight=False)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = PIPE_WIDTH
    return made


_ANSI = {
    "bold": "1",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def colors() -> bool:
    """Whether stdout takes colours: a terminal, and no NO_COLOR (https://no-color.org)."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, style: str) -> str:
    """``text`` in ``style`` (one of _ANSI) when stdout takes colours. Plain ANSI rather than
    Rich here: ``status`` prints without importing Rich, which keeps its start-up short."""
    if not style or not colors():
        return text
    return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"


def fields(rows: list[tuple[str, str]]) -> None:
    """``label   value`` lines, labels in bold on a terminal."""
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        lines = value.splitlines() or [""]
        out(f"{paint(label.ljust(width), 'bold')}  {lines[0]}")
        for more in lines[1:]:
            out(f"{' ' * width}  {more}")


def status_word(value: str | None) -> str:
    return paint(value or "-", STATUS_STYLES.get(value or "", ""))


def status(value: str | None) -> Text:
    from rich.text import Text

    return Text(value or "-", style=STATUS_STYLES.get(value or "", ""))


def table(*columns: str, no_wrap: tuple[str, ...] = ()) -> Table:
    """The CLI's table: no borders, bold headers; ``no_wrap`` columns (ids) never wrap."""
    from rich.table import Table

    shown = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        shown.add_column(column, no_wrap=column in no_wrap)
    return shown


def add_row(table: Table, *cells: str | Text) -> None:
    """A table row whose text cells are shown as they are: the API's names, paths and
    descriptions are data, never Rich markup (a session named ``[/]`` must not crash)."""
    from rich.text import Text

    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def when(value: str | None) -> str:
    """``2026-11-20 16:47:01`` (UTC), from the API's ISO 8601 timestamps."""
    moment = parse_time(value)
    if moment is None:
        return value or "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def took(start: str | None, end: str | None) -> str:
    """How long between two of the API's timestamps, or ``-``."""
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return "-"
    return seconds(max(0.0, (b - a).total_seconds()))


def size(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns
