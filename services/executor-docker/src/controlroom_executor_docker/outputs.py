"""A finished run's files (``output/**`` and its logs) stored as artifacts."""

from __future__ import annotations

import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

from controlroom_contracts.events import ArtifactStored
from controlroom_executor_docker.backend import RunSpec
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
    objects: ObjectStore, spec: RunSpec, files_dir: Path, max_bytes: int
) -> Collected:
    events: list[ArtifactStored] = []
    skipped: list[str] = []
    for index, (artifact_path, path) in enumerate(_files(files_dir)):
        if index >= MAX_FILES:
            skipped.append(f"{artifact_path} (more than {MAX_FILES} files)")
            continue
        artifact_id: UUID = uuid4()
        key = f"{spec.tenant_id}/{spec.run_id}/{artifact_id}"
        content_type = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
        if artifact_path.startswith("logs/"):
            content_type = "text/plain"
        try:
            stored = await objects.put(
                key, file_chunks(path), content_type=content_type, max_bytes=max_bytes
            )
        except ObjectTooLarge:
            skipped.append(f"{artifact_path} (larger than {max_bytes} bytes)")
            continue
        events.append(
            ArtifactStored(
                tenant_id=spec.tenant_id,
                run_id=spec.run_id,
                attempt=spec.attempt,
                artifact_id=artifact_id,
                path=artifact_path,
                size_bytes=stored.size_bytes,
                checksum=f"sha256:{stored.sha256}",
                content_type=content_type,
                storage_key=key,
            )
        )
    if skipped:
        log.warning("files not kept as artifacts", extra={"skipped": skipped[:20]})
    return Collected(events, skipped)
