"""Exit codes, and the errors a command ends with: each is printed as one line on stderr
(``error: ...``) and exits with its code; nothing the CLI expects ever shows a traceback."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``controlroom`` exits with (documented in ``--help`` and docs/cli.md)."""

    OK = 0
    FAILED = 1
    """The run failed; the job is invalid; a download did not match its checksum."""
    CANCELLED = 2
    """The run was cancelled."""
    TIMEOUT = 3
    """``wait --timeout`` (or ``submit --wait --timeout``) passed before the run ended."""
    USAGE = 4
    """A bad option or argument, a configuration problem, a file that cannot be read."""
    API = 5
    """The API refused the request (problem+json), or could not be reached."""
    INTERRUPTED = 130
    """Ctrl-C."""


EXIT_CODES_HELP = """Exit codes:
  0    success (wait: the run completed)
  1    the run failed; the job is invalid; a download's checksum did not match
  2    the run was cancelled
  3    --timeout passed before the run ended
  4    usage or configuration error
  5    the API refused the request, or could not be reached
  130  interrupted"""


class CliError(Exception):
    """A problem the command reports as one line and an exit code."""

    exit_code: ExitCode = ExitCode.API

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageProblem(CliError):
    """An option, argument or local file the command cannot use."""

    exit_code = ExitCode.USAGE


class ConfigProblem(CliError):
    """The profile file or the environment does not configure the CLI as asked."""

    exit_code = ExitCode.USAGE


class InvalidJob(CliError):
    """The job file (or the job built from options) is not a job the API accepts."""

    exit_code = ExitCode.FAILED


class ApiProblem(CliError):
    """The API answered with an error; ``status`` is its HTTP status."""

    exit_code = ExitCode.API

    def __init__(self, message: str, status: int, problem: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class Unreachable(CliError):
    """No answer from the API: connection refused, name unknown, timed out, cut off."""

    exit_code = ExitCode.API


class ChecksumMismatch(CliError):
    """A downloaded artifact's bytes are not the ones the API recorded."""

    exit_code = ExitCode.FAILED
