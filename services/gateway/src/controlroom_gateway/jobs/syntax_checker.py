"""Syntax checks of a job's files, off the event loop and bounded.

A job may carry 200 files and 768 KiB of code. Parsing them on the API's event loop would stall
every other request for as long as it takes (seconds for a large YAML or SQL file), and one
``sh -n`` after another would keep a request waiting on each in turn. Here parsing runs in a
small pool of worker threads and shell checks as concurrent subprocesses, each with a bound
shared by all requests, so a burst of pre-flight checks queues instead of taking the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from controlroom_contracts.api import CodeFile, ValidationIssue
from controlroom_gateway.jobs import syntax


class SyntaxChecker:
    def __init__(
        self,
        *,
        parse_workers: int,
        shell_processes: int,
        parsers: Mapping[str, tuple[str, syntax.Parser]] = syntax.PARSERS,
        shell: Sequence[str] = syntax.SHELL,
    ) -> None:
        """At most ``parse_workers`` files are parsed and ``shell_processes`` ``sh -n`` run
        at once, across all requests."""
        self._parse_workers = parse_workers
        self._parsing = asyncio.Semaphore(parse_workers)
        self._shells = asyncio.Semaphore(shell_processes)
        self._parsers = parsers
        self._shell = tuple(shell)
        self._executor: ThreadPoolExecutor | None = None
        syntax.quiet_parsers()

    async def check(self, files: Sequence[CodeFile]) -> list[ValidationIssue]:
        """Every syntax problem of ``files``, in the order of the files."""
        found = await asyncio.gather(*(self._check(file) for file in files))
        return [issue for issues in found for issue in issues]

    async def _check(self, file: CodeFile) -> list[ValidationIssue]:
        kind = syntax.suffix(file)
        if kind == ".sh":
            async with self._shells:
                return await syntax.check_shell(file, self._shell)
        if kind not in self._parsers:
            return []
        async with self._parsing:
            # The parse cannot be interrupted: if the request goes away, it still finishes
            # in its thread, and the pool's size still bounds how many run.
            return await asyncio.get_running_loop().run_in_executor(
                self._pool(), syntax.parse, file, self._parsers
            )

    def _pool(self) -> ThreadPoolExecutor:
        # Made on first use (and again after close()), so nothing starts at construction.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._parse_workers, thread_name_prefix="syntax-parse"
            )
        return self._executor

    async def close(self) -> None:
        """Stop the worker threads once their current parse ends (the loop does not wait)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
