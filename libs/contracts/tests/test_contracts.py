"""Contracts: validation rules, subjects, and the exported schemas."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from controlroom_contracts import subjects
from controlroom_contracts.__main__ import main
from controlroom_contracts.api import CodeBundle, CodeFile, JobRequest
from controlroom_contracts.commands import ALL_COMMANDS, DispatchRun
from controlroom_contracts.events import ALL_EVENTS, EVENT_BY_SUBJECT, RunCompleted


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../up.py", "a/../../b.py", "a//b.py", "./a.py", "a b.py"]
)
def test_code_file_paths_must_be_safe_and_relative(path: str) -> None:
    with pytest.raises(ValidationError):
        CodeFile(path=path, content="")


def test_entrypoint_must_be_one_of_the_files() -> None:
    with pytest.raises(ValidationError, match="entrypoint"):
        CodeBundle(files=[CodeFile(path="a.py", content="")], entrypoint="b.py")
    assert CodeBundle(files=[CodeFile(path="a.py", content="")]).entrypoint_path() == "a.py"


def test_job_request_refuses_unknown_fields() -> None:
    body = {
        "job_type": "spark_etl",
        "spec": {"text": "x"},
        "code": {"files": [{"path": "a.py", "content": ""}]},
        "created_by": "me",
        "surprise": 1,
    }
    with pytest.raises(ValidationError, match="surprise"):
        JobRequest.model_validate(body)


def test_events_ignore_unknown_fields_so_old_consumers_accept_new_producers() -> None:
    event = RunCompleted.model_validate(
        {
            "tenant_id": "t",
            "run_id": str(uuid4()),
            "attempt": 1,
            "summary": "ok",
            "finished_at": "2026-01-01T00:00:00Z",
            "added_in_v2": True,
        }
    )
    assert event.schema_version == 1 and event.event_id


def test_every_event_has_its_own_subject_under_the_events_prefix() -> None:
    assert len(EVENT_BY_SUBJECT) == len(ALL_EVENTS)
    for event in ALL_EVENTS:
        if event.subject != subjects.RUN_HEARTBEAT:
            assert event.subject.startswith(subjects.EVENTS_PREFIX + ".")
    assert DispatchRun.subject == "controlroom.dispatch.{executor_kind}"


def test_export_writes_schemas_and_an_asyncapi_document(tmp_path: Path) -> None:
    assert main(["export", str(tmp_path)]) == 0
    schema = json.loads((tmp_path / "schemas" / "JobRequest.json").read_text())
    assert set(schema["required"]) == {"job_type", "spec", "code", "created_by"}
    doc = json.loads((tmp_path / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    for message in (*ALL_EVENTS, *ALL_COMMANDS):
        assert message.subject in addresses
        assert message.__name__ in doc["components"]["schemas"]
    # every $ref in the document resolves
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node = doc
        for key in ref.split("/"):
            node = node[key]
