"""Log redaction and settings resolution."""

from __future__ import annotations

import json
import logging

import pytest

from controlroom_runtime.logs import JsonFormatter, log_context, redact
from controlroom_runtime.settings import ServiceSettings


def test_secrets_are_redacted() -> None:
    line = redact(
        "dsn=postgresql+asyncpg://app:hunter2@db:5432/x Authorization: Bearer abc.def-ghi "
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    )
    assert "hunter2" not in line and "abc.def-ghi" not in line and "c2lnbmF0dXJl" not in line
    assert "app:***@db" in line


def test_json_lines_carry_the_bound_run_and_tenant() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "run finished", (), None)
    record.exit_code = 3
    with log_context(run_id="r-1", tenant_id="acme"):
        entry = json.loads(JsonFormatter("scheduler").format(record))
    assert entry["run_id"] == "r-1" and entry["tenant_id"] == "acme"
    assert entry["service"] == "scheduler" and entry["event"] == "run finished"
    assert entry["exit_code"] == 3


class _Lineage(ServiceSettings):
    service_key = "LINEAGE"


def test_a_service_can_point_at_its_own_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_DATABASE_URL", "postgresql://shared@h/db")
    assert _Lineage().database_url == "postgresql+asyncpg://shared@h/db"
    monkeypatch.setenv("CONTROLROOM_LINEAGE_DATABASE_URL", "postgresql://own@h/lineage")
    assert _Lineage().database_url == "postgresql+asyncpg://own@h/lineage"
