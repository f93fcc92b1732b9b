"""Every artifact of a run as one ZIP, streamed: written as its objects are read, so neither the
archive nor any artifact is held whole in memory or on disk."""

from __future__ import annotations

import asyncio
import contextlib
import zipfile
from collections.abc import AsyncIterator, Sequence

from controlroom_gateway.read_model.store import ArtifactRow
from controlroom_runtime.objectstore import ObjectMissing, ObjectStore


class _Drain:
    """A write-only, unseekable file for ``zipfile``: it keeps what was written until taken.

    Unseekable, ``zipfile`` writes each entry's sizes and CRC after its data (a data
    descriptor) instead of going back to its header."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken


async def zipped(objects: ObjectStore, artifacts: Sequence[ArtifactRow]) -> AsyncIterator[bytes]:
    """The ZIP of ``artifacts``, chunk by chunk, under their paths in the run.

    Each attempt stores its own files, so a retried run has several artifacts under one path
    (``logs/stdout.log``): the archive holds the latest of each, as a folder on disk would
    (every one stays downloadable on its own). An artifact whose object is gone is left out,
    and a MISSING.txt at the end names it."""
    drain = _Drain()
    missing: list[str] = []
    with zipfile.ZipFile(drain, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for artifact in latest_per_path(artifacts):
            # Closed however the loop ends: a client hanging up mid-entry closes the read too.
            async with contextlib.aclosing(objects.get(artifact.storage_key)) as chunks:
                try:
                    first = await anext(chunks, b"")
                except ObjectMissing:
                    missing.append(artifact.path)
                    continue
                # force_zip64: the size is known only once written, and may pass 4 GiB.
                with archive.open(artifact.path, mode="w", force_zip64=True) as entry:
                    # Deflating a MiB takes 20-30 ms: off the event loop, which serves every
                    # live stream of this process meanwhile.
                    await asyncio.to_thread(entry.write, first)
                    yield drain.take()
                    async for chunk in chunks:
                        await asyncio.to_thread(entry.write, chunk)
                        yield drain.take()
        if missing:
            archive.writestr("MISSING.txt", "".join(f"{path}\n" for path in missing))
    yield drain.take()


def latest_per_path(artifacts: Sequence[ArtifactRow]) -> list[ArtifactRow]:
    """The latest artifact of each path (``artifacts`` oldest first), in that order."""
    latest = {artifact.path: artifact for artifact in artifacts}
    return sorted(latest.values(), key=lambda a: (a.created_at, a.path))
