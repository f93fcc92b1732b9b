"""Artifacts of runs: upload (up to the configured size, sha256), download (the bytes, or a
presigned URL), delete (admin), and every artifact of a run as one ZIP."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from controlroom_contracts.api import ArtifactView, safe_relative_path
from controlroom_contracts.events import ArtifactDeleted, ArtifactStored
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import (
    ArtifactNotFound,
    InvalidRequest,
    PayloadTooLarge,
    RunNotFound,
)
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.read_model import store
from controlroom_gateway.read_model.store import ArtifactRow
from controlroom_gateway.runs import artifact_zip
from controlroom_runtime.objectstore import ObjectMissing, ObjectTooLarge
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactDownload:
    """Where an artifact's bytes are: at ``url`` (a presigned object-store URL), or in
    ``chunks`` read through the gateway."""

    artifact: ArtifactRow
    url: str | None = None
    chunks: AsyncIterator[bytes] | None = None


async def upload_artifact(
    gateway: Gateway,
    principal: Principal,
    *,
    run_id: UUID,
    path: str,
    content: AsyncIterator[bytes],
    content_type: str | None,
) -> ArtifactView:
    """Store ``content`` as the run's artifact at ``path`` (its type guessed from the path when
    not given), then record it; an upload over the limit is a 413 and leaves nothing behind."""
    try:
        safe_relative_path(path)
    except ValueError as exc:
        raise InvalidRequest(
            str(exc), errors=[{"field": "body.path", "message": str(exc), "type": "value_error"}]
        ) from exc
    runtime = gateway.runtime
    async with runtime.sessions() as session:
        run = await store.run_state(session, run_id, principal.tenant_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    _, attempt = run
    objects = gateway.objects
    artifact_id = uuid4()
    key = f"{principal.tenant_id}/{run_id}/{artifact_id}"
    content_type = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    try:
        stored = await objects.put(
            key, content, content_type=content_type, max_bytes=gateway.settings.max_artifact_bytes
        )
    except ObjectTooLarge as exc:
        raise PayloadTooLarge(f"artifact exceeds {exc.limit} bytes") from exc
    event = ArtifactStored(
        tenant_id=principal.tenant_id,
        run_id=run_id,
        attempt=max(attempt, 1),
        artifact_id=artifact_id,
        path=path,
        size_bytes=stored.size_bytes,
        checksum=f"sha256:{stored.sha256}",
        content_type=content_type,
        storage_key=key,
    )
    row = store.artifact_row(event, key)
    try:
        async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
            await store.add_artifacts(uow.session, [row])
            await uow.emit(event)
    except BaseException:
        await objects.delete(key)  # no object without its record
        raise
    log.info("artifact stored", extra={"run_id": str(run_id), "size_bytes": stored.size_bytes})
    return row.view()


async def download_artifact(
    gateway: Gateway, principal: Principal, artifact_id: UUID, *, redirect: bool
) -> ArtifactDownload:
    """The artifact's bytes; with ``redirect``, a presigned URL instead when the object store
    gives one. Its first chunk is read here, so a missing object is a 404, not a cut stream."""
    async with gateway.runtime.sessions() as session:
        row = await store.get_artifact(session, artifact_id, principal.tenant_id)
    if row is None:
        raise ArtifactNotFound(f"artifact {artifact_id} not found")
    objects = gateway.objects
    expires = timedelta(seconds=gateway.settings.object_store.presign_seconds)
    if redirect and (url := await objects.presigned_url(row.storage_key, expires)):
        return ArtifactDownload(row, url=url)
    body = objects.get(row.storage_key)
    try:
        first = await anext(body)
    except StopAsyncIteration:
        first = b""
    except ObjectMissing as exc:
        raise ArtifactNotFound(f"artifact {artifact_id} has no stored object") from exc

    async def stream() -> AsyncIterator[bytes]:
        yield first
        async for chunk in body:
            yield chunk

    return ArtifactDownload(row, chunks=stream())


async def delete_artifact(gateway: Gateway, principal: Principal, artifact_id: UUID) -> None:
    """Delete the artifact's record, then its stored object."""
    runtime = gateway.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        row = await store.get_artifact(uow.session, artifact_id, principal.tenant_id)
        if row is None:
            raise ArtifactNotFound(f"artifact {artifact_id} not found")
        await store.delete_artifact(uow.session, artifact_id, principal.tenant_id)
        await uow.emit(
            ArtifactDeleted(
                tenant_id=principal.tenant_id,
                run_id=row.run_id,
                artifact_id=artifact_id,
                path=row.path,
                deleted_by=principal.subject,
            )
        )
    # After the commit: a failure here leaves an orphaned object, never a record without one.
    await gateway.objects.delete(row.storage_key)
    log.info("artifact deleted", extra={"run_id": str(row.run_id), "path": row.path})


async def zip_run_artifacts(
    gateway: Gateway, principal: Principal, run_id: UUID
) -> AsyncIterator[bytes]:
    """Every artifact of the run as one ZIP, streamed (``artifact_zip``); an unknown run is a
    404 here, before any byte of it."""
    async with gateway.runtime.sessions() as session:
        if await store.run_state(session, run_id, principal.tenant_id) is None:
            raise RunNotFound(f"run {run_id} not found")
        artifacts = await store.run_artifacts(session, run_id, principal.tenant_id)
    return artifact_zip.zipped(gateway.objects, artifacts)
