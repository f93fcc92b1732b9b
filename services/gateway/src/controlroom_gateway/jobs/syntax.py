"""Syntax checks of code files by kind. Parsing only: nothing is executed.

``parse`` is CPU-bound and synchronous: callers run it off the event loop (see
``syntax_checker``). ``check_shell`` starts one ``sh -n`` process. Whatever a parser does with
hostile input (nesting deep enough to exhaust its recursion or its stack, a tokenizer error it
does not document) is a problem with the file, reported as such, never an exception.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import signal
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath

import sqlglot
import yaml
from sqlglot.errors import ParseError, SqlglotError

from controlroom_contracts.api import CodeFile, ValidationIssue

Parser = Callable[[CodeFile], list[ValidationIssue]]

SHELL: tuple[str, ...] = ("/bin/sh", "-n", "/dev/stdin")
"""``-n``: read the script, run no command. The script arrives on stdin, so no temporary
file is written, and ``/dev/stdin`` names it in messages (replaced by the file's path)."""
SHELL_TIMEOUT_SECONDS = 10.0
"""A check that takes longer is reported, so a slot of the bounded pool is never held forever."""
PYTHON_FILENAME = "<job file>"
"""The name Python compiles a job's file under, so that its warnings can be told apart."""


def quiet_parsers() -> None:
    """Keep what parsing a job's files says out of the process's output: Python's
    SyntaxWarnings about questionable code, and sqlglot's warnings, which quote the SQL."""
    warnings.filterwarnings("ignore", category=SyntaxWarning, module=re.escape(PYTHON_FILENAME))
    logging.getLogger("sqlglot").setLevel(logging.ERROR)


def suffix(file: CodeFile) -> str:
    return PurePosixPath(file.path).suffix.lower()


def _python(file: CodeFile) -> list[ValidationIssue]:
    try:
        ast.parse(file.content, filename=PYTHON_FILENAME)
    except SyntaxError as exc:
        return [
            ValidationIssue(
                code="syntax.python",
                message=exc.msg,
                file=file.path,
                line=_position(exc.lineno),
                column=_position(exc.offset),
            )
        ]
    return []


def _sql(file: CodeFile) -> list[ValidationIssue]:
    try:
        sqlglot.parse(file.content, read="postgres")
    except ParseError as exc:
        issues = []
        for error in exc.errors or [{}]:
            issues.append(
                ValidationIssue(
                    code="syntax.sql",
                    message=str(error.get("description") or exc).splitlines()[0],
                    file=file.path,
                    line=_position(error.get("line")),
                    column=_position(error.get("col")),
                )
            )
        return issues
    except SqlglotError as exc:  # e.g. TokenError: an unterminated string or comment
        return [ValidationIssue(code="syntax.sql", message=_first_line(exc), file=file.path)]
    return []


def _json(file: CodeFile) -> list[ValidationIssue]:
    try:
        json.loads(file.content)
    except json.JSONDecodeError as exc:
        return [
            ValidationIssue(
                code="syntax.json",
                message=exc.msg,
                file=file.path,
                line=_position(exc.lineno),
                column=_position(exc.colno),
            )
        ]
    return []


def _yaml(file: CodeFile) -> list[ValidationIssue]:
    try:
        list(yaml.safe_load_all(file.content))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        return [
            ValidationIssue(
                code="syntax.yaml",
                message=str(exc.problem or exc),
                file=file.path,
                line=_position(mark.line + 1) if mark else None,
                column=_position(mark.column + 1) if mark else None,
            )
        ]
    except yaml.YAMLError as exc:
        return [ValidationIssue(code="syntax.yaml", message=str(exc), file=file.path)]
    return []


PARSERS: Mapping[str, tuple[str, Parser]] = {
    ".py": ("python", _python),
    ".sql": ("sql", _sql),
    ".json": ("json", _json),
    ".yaml": ("yaml", _yaml),
    ".yml": ("yaml", _yaml),
}
"""File suffix -> (kind, parser) of the files parsed in-process."""


def parse(
    file: CodeFile, parsers: Mapping[str, tuple[str, Parser]] = PARSERS
) -> list[ValidationIssue]:
    """The syntax problems of a file parsed in-process ([] for other kinds). Never raises
    for what the file contains."""
    found = parsers.get(suffix(file))
    if found is None:
        return []
    kind, parser = found
    try:
        return parser(file)
    except (RecursionError, MemoryError):
        # CPython's parser reports nesting past its stack as MemoryError, the others as
        # RecursionError: either way the file is nested too deeply to be read.
        message = "nested too deeply to parse"
    except Exception as exc:  # a parser's undocumented failure is still the file's problem
        message = f"could not be parsed: {_first_line(exc) or type(exc).__name__}"
    return [ValidationIssue(code=f"syntax.{kind}", message=message, file=file.path)]


async def check_shell(
    file: CodeFile,
    command: Sequence[str] = SHELL,
    timeout: float = SHELL_TIMEOUT_SECONDS,
) -> list[ValidationIssue]:
    """The problems ``sh -n`` finds in a shell script."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # communicate() ignores a closed pipe: sh may stop reading at the first error.
        _, stderr = await asyncio.wait_for(process.communicate(file.content.encode()), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return [
            ValidationIssue(
                code="syntax.shell", message=f"sh -n took over {timeout:g} s", file=file.path
            )
        ]
    if process.returncode == 0:
        return []
    message = stderr.decode(errors="replace").strip().replace(command[-1], file.path, 1)
    if process.returncode is not None and process.returncode < 0:
        # dash's parser recurses without a limit: deep nesting overflows its stack.
        message = f"sh -n was ended by {_signal(-process.returncode)}: the script is likely "
        message += "nested too deeply"
    elif not message:
        message = f"sh -n failed with exit status {process.returncode}"
    return [
        ValidationIssue(code="syntax.shell", message=message, file=file.path, line=_line(message))
    ]


def _line(message: str) -> int | None:
    """dash says ``<file>: <line>: <message>``."""
    for part in message.split(":"):
        if part.strip().isdigit():
            return _position(int(part.strip()))
    return None


def _signal(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _position(value: object) -> int | None:
    """A line or column from 1, or None: parsers also say 0, and sqlglot negative columns."""
    return value if isinstance(value, int) and value >= 1 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else ""
