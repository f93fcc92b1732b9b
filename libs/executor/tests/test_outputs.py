"""A finished attempt's files become artifacts under names any download may safely use."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from controlroom_executor.backend import AttemptKey
from controlroom_executor.outputs import collect
from controlroom_executor.redaction import Redactor
from controlroom_runtime.objectstore import LocalObjectStore


async def test_names_a_download_could_misread_are_skipped_and_said_so(tmp_path: Path) -> None:
    files = tmp_path / "files"
    (files / "output" / "sub").mkdir(parents=True)
    (files / "output" / "sub" / "result.csv").write_text("a,b\n")
    # A backslash is a folder separator to Windows unzip tools: `..\..\evil.bat` would land
    # outside the folder the user extracts into.
    (files / "output" / "..\\..\\evil.bat").write_text("echo owned")
    (files / "output" / "with space.txt").write_text("x")
    collected = await collect(
        LocalObjectStore(tmp_path / "objects"),
        AttemptKey(run_id=uuid4(), attempt=1),
        "acme",
        files,
        max_bytes=1 << 20,
        redactor=Redactor([]),
    )
    assert [event.path for event in collected.events] == ["output/sub/result.csv"]
    assert len(collected.skipped) == 2
    assert all("name not allowed" in reason for reason in collected.skipped)
    assert any("evil.bat" in reason for reason in collected.skipped)
