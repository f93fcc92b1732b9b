"""The routing file: the default loads, sizes parse, and every bad file is refused with a
message naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom_contracts.api import KNOWN_JOB_TYPES
from controlroom_runtime.routing_file import (
    DEFAULT_ROUTING_FILE,
    RoutingFileError,
    RoutingSettings,
    load_routing,
)
from controlroom_runtime.settings import ServiceSettings

ROUTE = """\
job_types:
  diagram_export:
    executor: docker
    image: localhost/controlroom-python:1
    commands: {".py": ["python3", "-I"], ".sh": ["sh"]}
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def test_the_default_file_routes_the_constitutions_five_job_types() -> None:
    matrix = load_routing(None)
    assert set(matrix.job_types) == set(KNOWN_JOB_TYPES)
    assert {name: route.executor for name, route in matrix.job_types.items()} == {
        "spark_etl": "k8s",
        "diagram_export": "docker",
        "schema_migration": "k8s",
        "kb_catalog": "docker",
        "code_validation": "k8s",
    }
    for route in matrix.job_types.values():
        assert route.image == "localhost/controlroom-python:1"
        assert route.command_for("jobs/main.py") == ["python3", "-I", "jobs/main.py"]
        assert route.command_for("run.sh") == ["sh", "run.sh"]
        assert route.network == "none"
        assert route.timeout_seconds is not None and route.retry is not None
        assert route.retry.max_attempts == 3
    assert load_routing(DEFAULT_ROUTING_FILE) == matrix


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("512Mi", 512 << 20),
        ("2Gi", 2 << 30),
        ("100M", 100_000_000),
        ("1gi", 1 << 30),
        (1 << 21, 1 << 21),
        ("3145728", 3 << 20),
    ],
)
def test_sizes_parse_in_kubernetes_quantity_style(
    tmp_path: Path, size: object, expected: int
) -> None:
    matrix = load_routing(_file(tmp_path, ROUTE + f"    memory: {size}\n    tmp: {size}\n"))
    route = matrix.job_types["diagram_export"]
    assert route.memory_bytes == expected and route.tmp_bytes == expected


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        (ROUTE + "    memroy: 1Gi\n", "job_types.diagram_export.memroy", "unknown key"),
        (ROUTE + "    memory: lots\n", "job_types.diagram_export.memory", "is not a size"),
        (ROUTE + "    workspace: 1Ki\n", "job_types.diagram_export.workspace", "greater than"),
        (ROUTE + "    network: internet\n", "job_types.diagram_export.network", "'none'"),
        (ROUTE + "    cpus: 0\n", "job_types.diagram_export.cpus", "greater than 0"),
        (
            ROUTE + "    retry: {max_attempts: 3, retry_on_timout: true}\n",
            "job_types.diagram_export.retry.retry_on_timout",
            "unknown key",
        ),
        (
            ROUTE.replace("    executor: docker\n", ""),
            "job_types.diagram_export.executor",
            "required",
        ),
        (ROUTE + "routes: {}\n", "routes", "unknown key"),
        ("job_types: {}\n", "job_types", "at least 1"),
        (
            "job_types:\n  'bad name': {executor: docker, image: i, commands: {}}\n",
            "job_types",
            "bad name",
        ),
    ],
)
def test_a_bad_value_or_key_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, field: str, says: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(RoutingFileError) as raised:
        load_routing(path)
    assert raised.value.path == path and raised.value.fields == [field]
    message = str(raised.value)
    assert str(path) in message and field in message and says in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("job_types:\n  diagram_export: [\n", "is not valid YAML"),
        ("job_types:\n  x: {executor: docker}\n  x: {executor: k8s}\n", "'x' is given twice"),
        ("- a list\n", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_a_file_that_is_not_a_matrix_is_refused_with_where(
    tmp_path: Path, text: str, says: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(RoutingFileError, match=says) as raised:
        load_routing(path)
    assert str(path) in str(raised.value)


def test_a_yaml_error_says_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, ROUTE + "    memory: [1Gi\n")
    with pytest.raises(RoutingFileError, match=r"line \d+, column \d+"):
        load_routing(path)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(RoutingFileError, match="cannot be read") as raised:
        load_routing(missing)
    assert str(missing) in str(raised.value)


class _Settings(ServiceSettings, RoutingSettings):
    pass


def test_settings_read_the_file_once_and_apply_profile_and_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _file(tmp_path, ROUTE.replace("executor: docker", "executor: k8s"))
    monkeypatch.setenv("CONTROLROOM_ROUTING_FILE", str(path))
    embedded = _Settings()
    assert embedded.routing().job_types["diagram_export"].executor == "docker"
    path.write_text("not: [read again")
    assert embedded.routing() is embedded.routing()  # cached: the file is read once

    path.write_text(ROUTE.replace("executor: docker", "executor: k8s"))
    monkeypatch.setenv("CONTROLROOM_ROUTING_PROFILE", "production")
    assert _Settings().routing().job_types["diagram_export"].executor == "k8s"
    monkeypatch.setenv("CONTROLROOM_ROUTES", '{"diagram_export": "bench"}')
    assert _Settings().routing().job_types["diagram_export"].executor == "bench"


def test_an_unset_or_empty_setting_means_the_default_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTROLROOM_ROUTING_FILE", "")
    assert _Settings().routing_file is None
    assert set(_Settings().routing().job_types) == set(KNOWN_JOB_TYPES)


def test_an_override_for_a_job_type_the_file_lacks_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTROLROOM_ROUTING_FILE", str(_file(tmp_path, ROUTE)))
    monkeypatch.setenv("CONTROLROOM_ROUTES", '{"n8n_only_type": "docker"}')
    with pytest.raises(RoutingFileError) as raised:
        _Settings().routing()
    assert raised.value.fields == ["CONTROLROOM_ROUTES.n8n_only_type"]
