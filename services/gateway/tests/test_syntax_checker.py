"""The syntax checker keeps parsing off the event loop, and bounds what runs at once."""

from __future__ import annotations

import asyncio
import stat
import threading
from pathlib import Path

from controlroom_contracts.api import CodeFile, ValidationIssue
from controlroom_devstack.waiting import until
from controlroom_gateway.jobs.syntax_checker import SyntaxChecker


class BlockingParser:
    """Stands in for a slow parse: holds its thread until released, counting who is inside."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, file: CodeFile) -> list[ValidationIssue]:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.threads.add(threading.get_ident())
        # Bounded, so a parse run on the loop's own thread fails the test instead of hanging.
        released = self.release.wait(timeout=30)
        with self._lock:
            self.inside -= 1
        return [ValidationIssue(code="syntax.slow", message=str(released), file=file.path)]


async def test_parsing_runs_in_worker_threads_at_most_n_at_once() -> None:
    parser = BlockingParser()
    checker = SyntaxChecker(parse_workers=2, shell_processes=1, parsers={".py": ("py", parser)})
    files = [CodeFile(path=f"f{i}.py", content="") for i in range(6)]
    try:
        checking = asyncio.create_task(checker.check(files))
        # The loop keeps running while two parses hold their threads: it is not theirs.
        await until(lambda: parser.inside == 2, what="two parses under way")
        assert not checking.done()
        parser.release.set()
        issues = await checking
    finally:
        parser.release.set()
        await checker.close()
    assert [i.file for i in issues] == [f.path for f in files]
    assert all(i.message == "True" for i in issues)
    assert parser.most_inside == 2
    assert threading.get_ident() not in parser.threads


async def test_shell_checks_run_concurrently_up_to_the_bound(tmp_path: Path) -> None:
    """A stand-in for ``sh -n`` that records that it started and waits to be let go."""
    shell = tmp_path / "fake-sh"
    shell.write_text(
        "#!/bin/sh\n"
        f'touch "{tmp_path}/started.$$"\n'
        f'while [ ! -e "{tmp_path}/go" ]; do sleep 0.01; done\n'
        "cat >/dev/null\n"
        "exit 0\n"
    )
    shell.chmod(shell.stat().st_mode | stat.S_IXUSR)
    checker = SyntaxChecker(parse_workers=1, shell_processes=3, shell=(str(shell),))
    files = [CodeFile(path=f"s{i}.sh", content="echo\n") for i in range(7)]

    def started() -> int:
        return len(list(tmp_path.glob("started.*")))

    checking = asyncio.create_task(checker.check(files))
    try:
        # Concurrently, not one after another: three wait together, and no fourth starts.
        await until(lambda: started() == 3, what="three checks under way")
        assert started() == 3 and not checking.done()
    finally:
        (tmp_path / "go").touch()
    assert await checking == []
    assert started() == 7
