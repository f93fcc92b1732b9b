"""Options every command shares, and the connection a command opens."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from controlroom_cli import config
from controlroom_cli.errors import UsageProblem

if TYPE_CHECKING:
    from controlroom_cli.client import Api

Json = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout (one document).")
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="Profile of the config file (else $CONTROLROOM_PROFILE, else the file's default).",
        show_default=False,
    ),
]
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.", show_default=False)]
Limit = Annotated[int, typer.Option(min=1, max=200, metavar="N", help="Per page.")]
Cursor = Annotated[
    str | None,
    typer.Option(
        metavar="CURSOR", help="The next cursor a previous page printed.", show_default=False
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        metavar="SECONDS",
        help="Stop waiting after this many seconds: exit code 3.",
        show_default=False,
    ),
]
Inputs = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="An input, key=value (repeatable); over the job's own.",
        show_default=False,
    ),
]


def connect(profile: str | None) -> Api:
    """A client of the API the configuration names (httpx is imported here, not before)."""
    from controlroom_cli.client import Api

    return Api(config.resolve(profile))


def run_id(value: str) -> str:
    """``value`` if it is a run id (a UUID): a typo is a usage error, not a 422."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageProblem(f"{value!r} is not a run id (a UUID)") from None
