"""``controlroom``: the command line's wiring (its commands live in role-named modules) and
its one exit point: every error is one line on stderr and a documented exit code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from controlroom_cli import (
    __version__,
    artifacts,
    devtoken,
    jobs,
    lineage,
    mcp_stdio,
    render,
    runs,
    sessions,
    templates,
)
from controlroom_cli.config import PRECEDENCE_HELP, resolve
from controlroom_cli.errors import EXIT_CODES_HELP, CliError, ExitCode
from controlroom_cli.options import Json, Profile

HELP = f"""Control Room from the command line: submit jobs, follow runs, fetch their artifacts.

\b
{PRECEDENCE_HELP}

\b
{EXIT_CODES_HELP}
"""

app = typer.Typer(
    name="controlroom",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich's help renderer costs start-up time the target leaves no room for.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        render.out(f"controlroom {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Control Room from the command line."""


def show_config(json_out: Json = False, profile: Profile = None) -> None:
    """Where the CLI connects and why: the URL, the profile, where the token comes from."""
    settings = resolve(profile)
    document = {
        "url": settings.url,
        "url_from": settings.url_from,
        "profile": settings.profile,
        "config_file": str(settings.config_file),
        "token_from": settings.token_from,
    }
    if json_out:
        render.emit_json(document)
        return
    for key, value in document.items():
        render.out(f"{key:12} {value if value is not None else '-'}")


app.command("submit")(jobs.submit)
app.command("validate")(jobs.validate)
app.command("status")(runs.status)
app.command("wait")(runs.wait)
app.command("logs")(runs.logs)
app.command("cancel")(runs.cancel)
app.command("runs")(runs.runs)
app.add_typer(artifacts.app, name="artifacts")
app.command("lineage")(lineage.lineage)
app.add_typer(sessions.app, name="sessions")
app.add_typer(templates.app, name="templates")
app.command("token")(devtoken.token)
app.command("config")(show_config)
app.command("mcp")(mcp_stdio.mcp)


def run(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (never raises, never prints a traceback unless
    CONTROLROOM_DEBUG is set)."""
    from typer.main import get_command

    command = get_command(app)
    try:
        result = command.main(args=argv, prog_name="controlroom", standalone_mode=False)
    except CliError as exc:
        render.note(f"error: {exc.message}")
        return int(exc.exit_code)
    except typer.TyperException as exc:  # a usage error found by the parser
        return _usage(exc)
    except (typer.Abort, KeyboardInterrupt):
        render.note("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as exc:
        if os.environ.get("CONTROLROOM_DEBUG"):
            raise
        render.note(
            f"error: unexpected {type(exc).__name__}: {exc} (CONTROLROOM_DEBUG=1 shows where)"
        )
        return int(ExitCode.API)
    return int(result) if isinstance(result, int) else int(ExitCode.OK)


def _usage(exc: typer.TyperException) -> int:
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    if isinstance(exc, NoArgsIsHelpError):
        render.note(exc.format_message())  # the help of a group called without a command
        return int(ExitCode.USAGE)
    hint = ""
    if isinstance(exc, UsageError) and exc.ctx is not None:
        hint = f" (see: {exc.ctx.command_path} --help)"
    render.note(f"error: {exc.format_message()}{hint}")
    return int(ExitCode.USAGE)


def main() -> None:
    """The ``controlroom`` console script."""
    sys.exit(run())
