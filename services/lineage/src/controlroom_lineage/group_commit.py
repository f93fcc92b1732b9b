"""Group commit: requests that arrive together are written together, in one transaction.

OpenLineage events come in bursts (a scheduler's whole DAG finishing, a backfill): written one
transaction each, most of the lineage service's time went to BEGIN, COMMIT and the statements'
fixed costs. Here each request waits for the batch it joined; the first request to find no
batch being written writes whatever has gathered, up to ``max_batch``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 64,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writing = asyncio.Lock()

    async def submit(self, item: Item) -> Result:
        """``item``'s result, once the batch it joined is written (its error if that fails:
        every request of a failed batch fails, and its client retries)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        async with self._writing:
            if not future.done():
                await self._write_waiting()
        return await future

    async def _write_waiting(self) -> None:
        batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        except BaseException:
            # The writer was cancelled (the service is stopping): the others of its batch
            # must not wait for a result that will never come.
            for _, future in batch:
                future.set_exception(RuntimeError("the batch was abandoned"))
            raise
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
