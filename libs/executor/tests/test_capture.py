"""Output capture: capped logs with a marker, batched RunLog events, progress, redaction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import uuid4

import pytest

from controlroom_contracts.base import Message
from controlroom_contracts.events import RunLog, RunProgress
from controlroom_executor.backend import AttemptKey
from controlroom_executor.capture import BATCH_LINES, MAX_LINE_BYTES, OutputCapture
from controlroom_executor.redaction import MASK, Redactor


class Published:
    def __init__(self) -> None:
        self.events: list[Message] = []

    async def __call__(self, events: Sequence[Message]) -> None:
        self.events.extend(events)

    def logs(self, stream: str) -> list[str]:
        return [
            line
            for e in self.events
            if isinstance(e, RunLog) and e.stream == stream
            for line in e.lines
        ]


def _capture(
    tmp_path: Path, published: Published, cap: int = 1 << 20, secrets: tuple[str, ...] = ()
) -> OutputCapture:
    return OutputCapture(
        AttemptKey(uuid4(), 1),
        "t1",
        tmp_path / "logs",
        cap_bytes=cap,
        redactor=Redactor(secrets),
        publish=published,
    )


async def test_lines_split_across_chunks_are_stored_and_streamed_in_order(tmp_path: Path) -> None:
    published = Published()
    capture = _capture(tmp_path, published)
    for chunk in (b"one\ntw", b"o\nthr", b"ee"):
        capture.feed("stdout", chunk)
    capture.feed("stderr", b"warn\n")
    await capture.close()
    assert (tmp_path / "logs" / "stdout.log").read_text() == "one\ntwo\nthree\n"
    assert (tmp_path / "logs" / "stderr.log").read_text() == "warn\n"
    assert published.logs("stdout") == ["one", "two", "three"]
    assert published.logs("stderr") == ["warn"]
    assert capture.tail("stdout").splitlines()[-1] == "three"


async def test_output_past_the_cap_is_counted_and_marked_not_kept_nor_streamed(
    tmp_path: Path,
) -> None:
    published = Published()
    capture = _capture(tmp_path, published, cap=1000)
    for i in range(500):
        capture.feed("stdout", f"line {i:04d}\n".encode())  # 10 bytes each: 5,000 in all
    await capture.close()
    text = (tmp_path / "logs" / "stdout.log").read_text()
    kept, marker = text[:1000], text[1000:]
    assert kept.splitlines()[-1] == "line 0099"
    assert "output truncated" in marker and "4000 more bytes were not kept" in marker
    assert capture.truncated("stdout") == 4000
    assert len(published.logs("stdout")) == 100


async def test_a_line_without_end_is_cut_into_pieces(tmp_path: Path) -> None:
    published = Published()
    capture = _capture(tmp_path, published)
    capture.feed("stdout", b"x" * (MAX_LINE_BYTES * 3 + 5))
    await capture.close()
    lengths = [len(line) for line in published.logs("stdout")]
    assert lengths == [MAX_LINE_BYTES] * 3 + [5]


async def test_log_batches_are_bounded_and_numbered(tmp_path: Path) -> None:
    published = Published()
    capture = _capture(tmp_path, published)
    for i in range(BATCH_LINES * 2 + 1):
        capture.feed("stdout", f"{i}\n".encode())
    await capture.close()
    batches = [e for e in published.events if isinstance(e, RunLog)]
    assert [len(b.lines) for b in batches] == [BATCH_LINES, BATCH_LINES, 1]
    assert len({b.event_id for b in batches}) == 3


@pytest.mark.parametrize(
    ("line", "percent", "message"),
    [
        ("::progress 40 loading rows", 40.0, "loading rows"),
        ("::progress 12.5%", 12.5, None),
        ("::progress 250 over", 100.0, "over"),
    ],
)
async def test_progress_lines_become_progress_events(
    tmp_path: Path, line: str, percent: float, message: str | None
) -> None:
    published = Published()
    capture = _capture(tmp_path, published)
    capture.feed("stdout", f"hello\n{line}\n".encode())
    await capture.close()
    progress = [e for e in published.events if isinstance(e, RunProgress)]
    assert [(p.percent, p.message) for p in progress] == [(percent, message)]


async def test_not_progress_lines_are_only_logs(tmp_path: Path) -> None:
    published = Published()
    capture = _capture(tmp_path, published)
    capture.feed("stdout", b"::progress soon\nprogress 5\n")
    await capture.close()
    assert not [e for e in published.events if isinstance(e, RunProgress)]


async def test_secrets_are_redacted_from_the_stored_log_and_the_events(tmp_path: Path) -> None:
    published = Published()
    capture = _capture(tmp_path, published, secrets=("s3cr3t-value",))
    capture.feed("stdout", b"token=s3cr3t-value ok\n::progress 5 s3cr3t-value\n")
    await capture.close()
    stored = (tmp_path / "logs" / "stdout.log").read_text()
    assert "s3cr3t" not in stored and MASK in stored
    assert all("s3cr3t" not in e.model_dump_json() for e in published.events)


def test_file_redaction_masks_a_secret_split_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_bytes(b"a" * 7 + b"TOPSECRET" + b"b" * 20 + b"TOPSECRET")
    Redactor(["TOPSECRET"]).file(path, chunk=10)
    assert path.read_bytes() == b"a" * 7 + MASK.encode() + b"b" * 20 + MASK.encode()


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["1", "ab"]).text("a1b ab") == "a1b ab"
