"""A finished attempt's files (``output/**`` and its logs) stored as artifacts.

Artifact ids and object keys are derived from the attempt and the path, so storing the same
attempt's files again (a report retried after an outage, a re-adopted attempt) overwrites the
same objects and repeats the same events, which the gateway already has.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from uuid import NAMESPACE_URL, UUID, uuid5

from controlroom_contracts.api import safe_relative_path
from controlroom_contracts.events import ArtifactStored
from controlroom_executor.backend import AttemptKey
from controlroom_executor.redaction import Redactor
from controlroom_runtime.objectstore import ObjectStore, ObjectTooLarge, file_chunks

log = logging.getLogger(__name__)

MAX_FILES = 1000


@dataclass(frozen=True)
class Collected:
    events: list[ArtifactStored]
    skipped: list[str]


def _files(files_dir: Path) -> list[tuple[str, Path]]:
    """(artifact path, file) for output/** then the logs, never following a symlink.

    A job could point a symlink at any file of the host; only regular files are kept.
    """
    found: list[tuple[str, Path]] = []
    output = files_dir / "output"
    if output.is_dir() and not output.is_symlink():
        for root, dirs, names in os.walk(output, followlinks=False):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    found.append((path.relative_to(files_dir).as_posix(), path))
    for name in ("stdout.log", "stderr.log"):
        path = files_dir / "logs" / name
        if path.is_file() and path.stat().st_size > 0:
            found.append((f"logs/{name}", path))
    return found


async def collect(
    objects: ObjectStore,
    key: AttemptKey,
    tenant_id: str,
    files_dir: Path,
    max_bytes: int,
    redactor: Redactor,
) -> Collected:
    """Store ``files_dir``'s ``output/**`` and ``logs/*.log`` (the logs are already redacted)."""
    events: list[ArtifactStored] = []
    skipped: list[str] = []
    for index, (artifact_path, path) in enumerate(_files(files_dir)):
        if index >= MAX_FILES:
            skipped.append(f"{artifact_path} (more than {MAX_FILES} files)")
            continue
        try:
            # The rule the upload API applies: a name a job chose must not become, for
            # whoever downloads it (one by one or in a ZIP), a path out of their folder
            # (`..\\x` is one on Windows) or a name their tools misread.
            safe_relative_path(artifact_path)
        except ValueError as exc:
            skipped.append(f"{artifact_path!r} (name not allowed: {exc})")
            continue
        artifact_id: UUID = uuid5(
            NAMESPACE_URL, f"artifact/{key.run_id}/{key.attempt}/{artifact_path}"
        )
        storage_key = f"{tenant_id}/{key.run_id}/{artifact_id}"
        if redactor and not artifact_path.startswith("logs/"):
            await asyncio.to_thread(redactor.file, path)
        content_type = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
        if artifact_path.startswith("logs/"):
            content_type = "text/plain"
        try:
            stored = await objects.put(
                storage_key, file_chunks(path), content_type=content_type, max_bytes=max_bytes
            )
        except ObjectTooLarge:
            skipped.append(f"{artifact_path} (larger than {max_bytes} bytes)")
            continue
        events.append(
            ArtifactStored(
                tenant_id=tenant_id,
                run_id=key.run_id,
                attempt=key.attempt,
                artifact_id=artifact_id,
                path=artifact_path,
                size_bytes=stored.size_bytes,
                checksum=f"sha256:{stored.sha256}",
                content_type=content_type,
                storage_key=storage_key,
            )
        )
    if skipped:
        log.warning("files not kept as artifacts", extra={"skipped": skipped[:20]})
    return Collected(events, skipped)
