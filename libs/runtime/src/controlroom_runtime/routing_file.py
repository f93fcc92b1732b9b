"""The routing matrix as configuration: a YAML file (``CONTROLROOM_ROUTING_FILE``), read once.

The scheduler routes with it, the executors fall back on it, the gateway shows it. A file that
cannot be used stops the service at start, with a message naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from controlroom_contracts.routing import Route, RoutingMatrix

DEFAULT_ROUTING_FILE = Path(__file__).with_name("routing.yaml")
"""The constitution's five job types, shipped with the package."""

DOCKER = "docker"

# What a route may say. ``Route`` itself ignores unknown keys (an executor reading a newer
# matrix must not fail); a file is checked strictly, so a misspelt limit is not silently lost.
_ROUTE_KEYS = frozenset(
    key for name, field in Route.model_fields.items() for key in (name, field.alias) if key
)


class RoutingFileError(ValueError):
    """The routing file (or an override of it) cannot be used: each problem names its field."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        """(field, what is wrong with it); the field is ``""`` for the file as a whole."""
        listed = "; ".join(f"{f}: {why}" if f else why for f, why in problems)
        super().__init__(f"routing file {path}: {listed}")

    @property
    def fields(self) -> list[str]:
        return [f for f, _ in self.problems]


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice (PyYAML keeps the last one, silently)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Hashable, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            break  # construct_mapping says what is wrong with it
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_routing(path: Path | None) -> RoutingMatrix:
    """The matrix in ``path`` (None: the default file), as written.

    Raises :class:`RoutingFileError` when the file is missing or unreadable, is not YAML, or
    holds an unknown key or a bad value (sizes such as ``512Mi``, ``2Gi`` or bytes)."""
    path = path or DEFAULT_ROUTING_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingFileError(path, [("", f"cannot be read ({exc})")]) from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise RoutingFileError(path, [("", f"is not valid YAML: {_yaml_problem(exc)}")]) from exc
    if not isinstance(data, dict):
        raise RoutingFileError(
            path, [("", "must be a mapping with one key, job_types: {<job type>: {...}}")]
        )
    problems = _unknown_keys(data)
    if problems:
        raise RoutingFileError(path, problems)
    try:
        return RoutingMatrix.model_validate(data)
    except ValidationError as exc:
        raise RoutingFileError(path, _validation_problems(exc)) from exc


def with_overrides(
    matrix: RoutingMatrix, profile: str, routes: Mapping[str, str], path: Path | None = None
) -> RoutingMatrix:
    """The matrix a deployment routes with: ``embedded`` (no cluster) sends every job type to
    executor-docker, ``production`` keeps the file's kinds; ``routes`` then sets single kinds.

    An override for a job type the file does not have is refused: the run would have no image
    and no limits."""
    unknown = [name for name in routes if matrix.route(name) is None]
    if unknown:
        raise RoutingFileError(
            path or DEFAULT_ROUTING_FILE,
            [
                (
                    f"CONTROLROOM_ROUTES.{name}",
                    "no such job type in the routing file; add it there to route it",
                )
                for name in unknown
            ],
        )
    kinds = {
        name: DOCKER if profile == "embedded" else route.executor
        for name, route in matrix.job_types.items()
    }
    kinds |= routes
    return RoutingMatrix(
        job_types={
            name: route.model_copy(update={"executor": kinds[name]})
            for name, route in matrix.job_types.items()
        }
    )


class RoutingSettings(BaseModel):
    """Mixed into a service's settings (``CONTROLROOM_ROUTING_FILE``, ``..._PROFILE``,
    ``CONTROLROOM_ROUTES``); every service reading the same environment routes alike."""

    routing_file: Path | None = Field(
        default=None,
        description="The routing matrix (YAML); unset: the constitution's five job types",
    )
    routing_profile: Literal["embedded", "production"] = Field(
        default="embedded",
        description="embedded: every job type runs on executor-docker (no cluster exists); "
        "production: each on the executor kind the routing file names",
    )
    routes: dict[str, str] = Field(
        default_factory=dict,
        description='Per-job-type executor kinds over the file\'s, JSON: {"spark_etl": "k8s"}',
    )

    _routing: RoutingMatrix | None = PrivateAttr(default=None)

    @field_validator("routing_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    def routing(self) -> RoutingMatrix:
        """The matrix with the profile and overrides applied; read once, then kept.

        Raises :class:`RoutingFileError`: call it at start so a bad file stops the service."""
        if self._routing is None:
            self._routing = with_overrides(
                load_routing(self.routing_file),
                self.routing_profile,
                self.routes,
                self.routing_file,
            )
        return self._routing


def _unknown_keys(data: dict[Any, Any]) -> list[tuple[str, str]]:
    """Keys ``RoutingMatrix`` would drop without a word (it forbids extras only at the top)."""
    routes = data.get("job_types")
    if not isinstance(routes, dict):
        return []  # the model says what is wrong with it
    problems = []
    for name, route in routes.items():
        if not isinstance(route, dict):
            continue
        for key in route:
            if key not in _ROUTE_KEYS:
                problems.append(
                    (f"job_types.{name}.{key}", f"unknown key; known: {', '.join(_known())}")
                )
    return problems


def _known() -> list[str]:
    """The keys as a file spells them (``memory``, not ``memory_bytes``)."""
    return sorted(f.alias or n for n, f in Route.model_fields.items())


def _validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        # The matrix's own check (job type names) has no location: it is about job_types.
        field = ".".join(str(part) for part in error["loc"]) or "job_types"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required"
        elif error["type"] == "extra_forbidden":
            message = "unknown key" if len(error["loc"]) > 1 else "unknown key; only job_types"
        problems.append((field, message))
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
