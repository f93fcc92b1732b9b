"""Job files: YAML and JSON, with every problem located at file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom_cli import jobfile
from controlroom_cli.errors import ExitCode, InvalidJob, UsageProblem

JOB = """\
job_type: diagram_export
name: export
spec:
  text: Export the diagrams
  inputs:
    source: supabase://raw.diagrams
code:
  files:
    - path: jobs/export.py
      content: |
        import sys
        print('exported'
    - path: jobs/helper.py
      file: helper.py
"""


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "helper.py").write_text("x = 1\n")
    return tmp_path


def test_a_yaml_job_file_is_the_api_body_with_file_references_read(job_dir: Path) -> None:
    job = jobfile.load(str(job_dir / "job.yaml"))
    assert job.body["job_type"] == "diagram_export"
    assert job.body["code"]["files"][0]["content"] == "import sys\nprint('exported'\n"
    assert job.body["code"]["files"][1] == {"path": "jobs/helper.py", "content": "x = 1\n"}


def test_a_yaml_syntax_error_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("job_type: x\nspec:\n  text: [unclosed\ncode: {}\n")
    with pytest.raises(InvalidJob) as raised:
        jobfile.load(str(bad))
    assert raised.value.message.startswith(f"{bad}:4:")
    assert "not valid YAML" in raised.value.message
    assert raised.value.exit_code == ExitCode.FAILED


def test_a_tab_indentation_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "tab.yaml"
    bad.write_text("job_type: x\nspec:\n\ttext: y\n")
    with pytest.raises(InvalidJob, match=rf"^{bad}:3:1: not valid YAML"):
        jobfile.load(str(bad))


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text("job_type: a\nspec:\n  text: b\njob_type: c\n")
    with pytest.raises(
        InvalidJob, match=rf"^{bad}:4:1: duplicate key 'job_type' \(first on line 1\)"
    ):
        jobfile.load(str(bad))


def test_a_json_syntax_error_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "job.json"
    bad.write_text('{\n  "job_type": "x",\n  "spec": {"text": "y",}\n}\n')
    with pytest.raises(InvalidJob, match=rf"^{bad}:3:24: not valid JSON"):
        jobfile.load(str(bad))


def test_json_fields_have_positions_too(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "job_type": "x",\n  "spec": {\n    "inputs": {}\n  }\n}\n')
    job = jobfile.load(str(path))
    # spec.text is missing: the API names body.spec.text; the nearest place is "spec".
    assert job.where({"field": "body.spec.text", "message": "Field required"}) == f"{path}:3:3"


def test_schema_problems_point_at_the_field_or_its_parent(job_dir: Path) -> None:
    path = str(job_dir / "job.yaml")
    job = jobfile.load(path)
    assert job.where({"field": "body.spec.inputs.source"}) == f"{path}:6:5"
    assert job.where({"field": "body.spec.inputs.target"}) == f"{path}:5:3"
    assert job.where({"field": "body.code.files.1.path"}) == f"{path}:13:7"
    assert job.where({"field": "body.lane"}) == f"{path}:1:1"


def test_code_in_a_literal_block_is_located_in_the_job_file(job_dir: Path) -> None:
    path = str(job_dir / "job.yaml")
    job = jobfile.load(path)
    # Line 2 column 15 of jobs/export.py is line 12 of the job file, indented by 8.
    issue = {"file": "jobs/export.py", "line": 2, "column": 15, "message": "'(' was never closed"}
    assert job.where(issue) == f"{path}:12:23"
    code_line = job.body["code"]["files"][0]["content"].splitlines()[1]
    assert JOB.splitlines()[11][22] == code_line[14] == "d"


def test_code_read_from_a_file_is_located_in_that_file(job_dir: Path) -> None:
    job = jobfile.load(str(job_dir / "job.yaml"))
    assert job.where({"file": "jobs/helper.py", "line": 1, "column": 3}) == (
        f"{job_dir / 'helper.py'}:1:3"
    )


def test_a_missing_referenced_code_file_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: x\ncode:\n  files:\n    - path: a.py\n      file: nowhere.py\n")
    with pytest.raises(InvalidJob, match=rf"^{path}:5:7: code file .*nowhere.py: no such file"):
        jobfile.load(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the job file is empty"), ("- a\n- b\n", ":1:1: a job file holds one mapping")],
)
def test_a_file_that_is_not_a_mapping_is_invalid(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(InvalidJob, match=message):
        jobfile.load(str(path))


def test_a_missing_job_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageProblem, match="no such job file"):
        jobfile.load(str(tmp_path / "nope.yaml"))


def test_options_build_a_job_and_override_the_file(
    job_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(job_dir)
    (job_dir / "src").mkdir()
    (job_dir / "src" / "main.py").write_text("print(1)\n")
    job = jobfile.build(
        "job.yaml",
        job_type="spark_etl",
        spec="New text",
        inputs=["target=supabase://gold.x", "source=supabase://raw.y"],
        code=["src/main.py"],
        lane="B",
        session="5f0c8f5e-8b9a-4d5e-9c1e-2f2a3b4c5d6e",
    )
    body = job.body
    assert body["job_type"] == "spark_etl" and body["spec"]["text"] == "New text"
    assert body["spec"]["inputs"] == {"source": "supabase://raw.y", "target": "supabase://gold.x"}
    assert body["code"]["files"][-1] == {"path": "src/main.py", "content": "print(1)\n"}
    assert body["lane"] == "B" and body["session_id"].startswith("5f0c8f5e")
    assert body["created_by"] == "controlroom-cli"
    assert job.where({"file": "src/main.py", "line": 1, "column": 1}) == "src/main.py:1:1"


def test_without_a_file_type_spec_and_code_are_needed() -> None:
    with pytest.raises(UsageProblem, match="give a job file, or --spec, --code"):
        jobfile.build(None, job_type="diagram_export")


@pytest.mark.parametrize(
    ("local", "remote"),
    [("jobs/a.py", "jobs/a.py"), ("./a.py", "a.py"), ("/tmp/x/b.py", "b.py"), ("../c.py", "c.py")],
)
def test_code_paths_stay_relative_and_inside(local: str, remote: str) -> None:
    assert jobfile.remote_path(local) == remote


def test_an_input_without_equals_is_a_usage_error() -> None:
    with pytest.raises(UsageProblem, match="expected key=value"):
        jobfile.parse_inputs(["source"])


def test_an_unquoted_date_stays_the_string_it_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "job_type: t\nspec:\n  text: x\n  inputs: {day: 2026-12-05, at: 2026-12-05 10:00}\n"
    )
    job = jobfile.load(str(path))
    assert job.body["spec"]["inputs"] == {"day": "2026-12-05", "at": "2026-12-05 10:00"}


def test_a_value_json_cannot_carry_is_invalid_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: t\nspec:\n  text: x\n  blob: !!binary aGVsbG8=\n")
    with pytest.raises(InvalidJob, match=r"job\.yaml:4:3: spec\.blob is a bytes.*quote it"):
        jobfile.load(str(path))


def test_a_recursive_alias_is_invalid_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: t\nspec:\n  a: &x [*x]\n")
    with pytest.raises(InvalidJob, match=r"job\.yaml:3:\d+: a recursive alias") as raised:
        jobfile.load(str(path))
    assert raised.value.exit_code == ExitCode.FAILED


def test_an_input_option_over_inputs_that_are_not_a_mapping_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job_type: t\nspec:\n  text: x\n  inputs: [a, b]\n")
    with pytest.raises(InvalidJob, match=r"job\.yaml:4:3: spec\.inputs is a list, not a mapping"):
        jobfile.build(str(path), inputs=["k=v"])
