"""A job from a file (YAML or JSON: the body of ``POST /jobs/run``) and from options, with
where each part of it was written, so a problem is reported at ``file:line:column``.

A code file in a job file may name a local file instead of holding its text::

    code:
      files:
        - path: jobs/export.py
          file: export.py        # read by the CLI, relative to the job file

A YAML syntax error, a duplicate key, a recursive alias, a value JSON cannot carry or an
unreadable ``file:`` is reported at its line. Dates are not read as dates: ``day: 2026-12-05``
is the string ``"2026-12-05"``, as the API would receive it from JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from controlroom_cli.errors import InvalidJob, UsageProblem

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TIMESTAMP = "tag:yaml.org,2002:timestamp"
# The safe loader without its timestamp resolver: an unquoted date stays the string it looks
# like (a job body is JSON, which has no dates).
Loader: Any = type(
    "JobLoader",
    (_SafeLoader,),
    {
        "yaml_implicit_resolvers": {
            first: [(tag, pattern) for tag, pattern in resolvers if tag != TIMESTAMP]
            for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
        }
    },
)
JSON_SCALARS = (str, int, float, bool, type(None))
DEFAULT_CREATED_BY = "controlroom-cli"


@dataclass(frozen=True)
class Position:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class CodeOrigin:
    """Where a code file's text was written: a local file, or a literal block (``|``) of the
    job file, whose line 1 is ``line_offset + 1`` there, indented by ``column_offset``."""

    file: str
    line_offset: int = 0
    column_offset: int = 0


@dataclass
class Job:
    """A job body and where its parts came from."""

    body: dict[str, Any]
    source: str | None = None
    positions: dict[tuple[str, ...], Position] = field(default_factory=dict)
    origins: dict[str, CodeOrigin] = field(default_factory=dict)

    def field_position(self, name: str) -> Position | None:
        """Where the API's ``body.spec.text`` is in the job file (for a missing field, its
        nearest written parent)."""
        parts = tuple(name.split("."))
        if parts[:1] == ("body",):
            parts = parts[1:]
        while parts not in self.positions and parts:
            parts = parts[:-1]
        return self.positions.get(parts) if self.source else None

    def where(self, issue: dict[str, Any]) -> str | None:
        """``file:line:column`` of a problem of the API's validation report, as far as known."""
        code_file, line, column = issue.get("file"), issue.get("line"), issue.get("column")
        if code_file:
            origin = self.origins.get(code_file, CodeOrigin(code_file))
            if line is None:
                return origin.file
            located = f"{origin.file}:{line + origin.line_offset}"
            if column is not None:
                located += f":{column + origin.column_offset}"
            return located
        if issue.get("field") and (position := self.field_position(str(issue["field"]))):
            return str(position)
        return self.source


def _syntax_error(path: str, exc: yaml.YAMLError) -> InvalidJob:
    """``file:line:column: not valid YAML: <problem> (<context> at line L, column C)``."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return InvalidJob(f"{path}: not valid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
    what = str(exc.problem or exc.context or "unreadable")
    context = exc.context_mark
    elsewhere = context is not None and mark is not None and context.line != mark.line
    if exc.problem and exc.context and context is not None and elsewhere:
        what += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
    return InvalidJob(f"{where}: not valid YAML: {what}")


def _compose(text: str, path: str) -> tuple[Any, Any]:
    """The YAML node tree and the data it makes."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _syntax_error(path, exc) from None
    finally:
        loader.dispose()
    return node, data


def _walk(
    node: Any,
    path: tuple[str, ...],
    file: str,
    out: dict[tuple[str, ...], Position],
    above: frozenset[int] = frozenset(),
) -> dict[tuple[str, ...], Any]:
    """Positions of every key and item under ``node``; returns the scalar nodes by path."""
    scalars: dict[tuple[str, ...], Any] = {}
    if id(node) in above:  # `a: &x [*x]`: a value that contains itself has no JSON form
        mark = node.start_mark
        raise InvalidJob(
            f"{file}:{mark.line + 1}:{mark.column + 1}: a recursive alias "
            "(an anchor used inside its own value)"
        )
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            here = Position(file, key.start_mark.line + 1, key.start_mark.column + 1)
            if name in seen:
                raise InvalidJob(f"{here}: duplicate key {name!r} (first on line {seen[name]})")
            seen[name] = here.line
            out[(*path, name)] = here
            scalars |= _walk(value, (*path, name), file, out, above)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, str(index))] = Position(
                file, item.start_mark.line + 1, item.start_mark.column + 1
            )
            scalars |= _walk(item, (*path, str(index)), file, out, above)
    elif isinstance(node, yaml.ScalarNode):
        scalars[path] = node
    return scalars


def _literal_origin(node: Any, file: str, text: str) -> CodeOrigin | None:
    """A code file written as a literal block keeps its lines: line n of the code is line
    (indicator line + n) of the job file."""
    if getattr(node, "style", None) != "|":
        return None
    lines = text.splitlines()
    indicator = node.start_mark.line  # 0-based: the line holding `|`
    for line in lines[indicator + 1 :]:
        if line.strip():
            return CodeOrigin(file, indicator + 1, len(line) - len(line.lstrip(" ")))
    return CodeOrigin(file, indicator + 1)


def load(path: str) -> Job:
    """The job in the file at ``path``, with the positions of its parts."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such job file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot be read: {exc}") from None
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidJob(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
        try:  # JSON is YAML: the positions come from the same parser
            node, _ = _compose(text, path)
        except InvalidJob:
            node = None
    else:
        node, data = _compose(text, path)
    if data is None:
        raise InvalidJob(f"{path}: the job file is empty")
    if not isinstance(data, dict):
        raise InvalidJob(f"{path}:1:1: a job file holds one mapping (job_type, spec, code, ...)")
    job = Job(body=data, source=path, positions={(): Position(path, 1, 1)})
    scalars = _walk(node, (), path, job.positions) if node is not None else {}
    _check_json(data, (), job)
    _code_files(job, scalars, text)
    return job


def _check_json(value: Any, path: tuple[str, ...], job: Job) -> None:
    """Refuse, at its line, a value JSON cannot carry (``!!binary``, ``!!set``, ``!!timestamp``,
    a date as a key)."""
    if isinstance(value, JSON_SCALARS):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, JSON_SCALARS):
                where = _nearest(job, path)
                raise InvalidJob(f"{where}: a key JSON cannot carry ({key!r}): quote it")
            _check_json(item, (*path, str(key)), job)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, (*path, str(index)), job)
        return
    where = _nearest(job, path)
    kind = type(value).__name__
    raise InvalidJob(f"{where}: {'.'.join(path)} is a {kind}, which JSON cannot carry: quote it")


def _nearest(job: Job, path: tuple[str, ...]) -> Position | str:
    while path not in job.positions and path:
        path = path[:-1]
    return job.positions.get(path) or job.source or "job"


def _code_files(job: Job, scalars: dict[tuple[str, ...], Any], text: str) -> None:
    """Read the ``file:`` of each code file; note where each code file's text was written."""
    assert job.source is not None
    files = (
        (job.body.get("code") or {}).get("files")
        if isinstance(job.body.get("code"), dict)
        else None
    )
    if not isinstance(files, list):
        return
    base = Path(job.source).parent
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            continue
        at = ("code", "files", str(index))
        if "file" in entry:
            where = job.positions.get((*at, "file"), job.positions[()])
            if "content" in entry:
                raise InvalidJob(f"{where}: a code file has `file` or `content`, not both")
            local = base / str(entry.pop("file"))
            try:
                entry["content"] = local.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidJob(f"{where}: code file {local}: {reason_of(exc)}") from None
            if isinstance(entry.get("path"), str):
                job.origins[entry["path"]] = CodeOrigin(str(local))
        elif isinstance(entry.get("path"), str) and (*at, "content") in scalars:
            origin = _literal_origin(scalars[(*at, "content")], job.source, text)
            if origin is not None:
                job.origins[entry["path"]] = origin


def reason_of(exc: BaseException) -> str:
    return exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)


def remote_path(local: str) -> str:
    """The path a ``--code`` file gets in the job: as given when it is relative and stays
    inside the current directory, else its name."""
    pure = PurePosixPath(Path(local).as_posix())
    if pure.is_absolute() or ".." in pure.parts:
        return pure.name
    return str(pure)


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise UsageProblem(f"--input {pair!r}: expected key=value")
        inputs[key] = value
    return inputs


def build(
    path: str | None,
    *,
    job_type: str | None = None,
    spec: str | None = None,
    inputs: list[str] | None = None,
    code: list[str] | None = None,
    name: str | None = None,
    lane: str | None = None,
    session: str | None = None,
    created_by: str | None = None,
) -> Job:
    """The job of a file (if any) with the options laid over it."""
    if path is None:
        missing = [
            option
            for option, given in (("--type", job_type), ("--spec", spec), ("--code", code))
            if not given
        ]
        if missing:
            raise UsageProblem("give a job file, or " + ", ".join(missing) + " (see --help)")
    job = load(path) if path is not None else Job(body={})
    body = job.body
    if job_type is not None:
        body["job_type"] = job_type
    if spec is not None or inputs:
        if not isinstance(body.get("spec"), dict):
            body["spec"] = {}
        if spec is not None:
            body["spec"]["text"] = spec
        if inputs:
            written = body["spec"].get("inputs") or {}
            if not isinstance(written, dict):
                where = job.positions.get(("spec", "inputs"), job.source or "job")
                raise InvalidJob(
                    f"{where}: spec.inputs is a {type(written).__name__}, not a mapping: "
                    "--input cannot add to it"
                )
            body["spec"]["inputs"] = {**written, **parse_inputs(inputs)}
    if code:
        if not isinstance(body.get("code"), dict):
            body["code"] = {}
        files = body["code"].get("files")
        files = list(files) if isinstance(files, list) else []
        for local in code:
            try:
                content = Path(local).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageProblem(f"--code {local}: {reason_of(exc)}") from None
            remote = remote_path(local)
            files = [f for f in files if not (isinstance(f, dict) and f.get("path") == remote)]
            files.append({"path": remote, "content": content})
            job.origins[remote] = CodeOrigin(local)
        body["code"]["files"] = files
    for key, value in (("name", name), ("lane", lane), ("session_id", session)):
        if value is not None:
            body[key] = value
    if created_by is not None:
        body["created_by"] = created_by
    body.setdefault("created_by", DEFAULT_CREATED_BY)
    return job
