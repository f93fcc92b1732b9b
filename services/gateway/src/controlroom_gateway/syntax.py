"""Syntax checks of code files by kind. Parsing only: nothing is executed."""

from __future__ import annotations

import ast
import asyncio
import json
import tempfile
from pathlib import Path

import sqlglot
import yaml
from sqlglot.errors import ParseError

from controlroom_contracts.api import CodeFile, ValidationIssue


async def check_file(file: CodeFile) -> list[ValidationIssue]:
    suffix = Path(file.path).suffix.lower()
    if suffix == ".py":
        return _python(file)
    if suffix == ".sql":
        return _sql(file)
    if suffix == ".json":
        return _json(file)
    if suffix in (".yaml", ".yml"):
        return _yaml(file)
    if suffix == ".sh":
        return await _shell(file)
    return []


def _python(file: CodeFile) -> list[ValidationIssue]:
    try:
        ast.parse(file.content, filename=file.path)
    except SyntaxError as exc:
        return [
            ValidationIssue(
                code="syntax.python",
                message=exc.msg,
                file=file.path,
                line=exc.lineno or None,
                column=exc.offset or None,
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
                    line=error.get("line") or None,
                    column=error.get("col") or None,
                )
            )
        return issues
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
                line=exc.lineno,
                column=exc.colno,
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
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        ]
    except yaml.YAMLError as exc:
        return [ValidationIssue(code="syntax.yaml", message=str(exc), file=file.path)]
    return []


async def _shell(file: CodeFile) -> list[ValidationIssue]:
    """``sh -n`` reads the script without running any command."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
        script.write(file.content)
        script.flush()
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-n",
            script.name,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
    if process.returncode == 0:
        return []
    message = stderr.decode(errors="replace").strip().replace(script.name, file.path)
    line = None
    for part in message.split(":"):
        if part.strip().isdigit():
            line = int(part.strip())
            break
    return [ValidationIssue(code="syntax.shell", message=message, file=file.path, line=line)]
