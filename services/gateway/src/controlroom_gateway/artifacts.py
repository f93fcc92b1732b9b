"""Artifact upload (multipart, up to 50 MB, sha256) and download (stream or presigned URL)."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from controlroom_contracts.api import ArtifactView, safe_relative_path
from controlroom_contracts.events import ArtifactDeleted, ArtifactStored
from controlroom_gateway import store
from controlroom_gateway.deps import (
    CurrentAdmin,
    CurrentOperator,
    CurrentPrincipal,
    RuntimeDep,
    SettingsDep,
)
from controlroom_gateway.errors import (
    PROBLEM,
    ArtifactNotFound,
    InvalidRequest,
    PayloadTooLarge,
    RunNotFound,
)
from controlroom_gateway.json_body import InteroperableJsonRoute
from controlroom_runtime.objectstore import ObjectMissing, ObjectStore, ObjectTooLarge
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1/artifacts", tags=["artifacts"], route_class=InteroperableJsonRoute
)
UPLOAD_PATH = "/api/v1/artifacts"


def _object_store(request: Request) -> ObjectStore:
    objects: ObjectStore = request.app.state.object_store
    return objects


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ArtifactView,
    summary="Upload an artifact of a run (multipart: run_id, path, file)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 413: PROBLEM, 422: PROBLEM},
)
async def upload_artifact(
    request: Request,
    run_id: Annotated[UUID, Form()],
    path: Annotated[str, Form(min_length=1, max_length=512)],
    file: Annotated[UploadFile, File()],
    principal: CurrentOperator,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> ArtifactView:
    try:
        safe_relative_path(path)
    except ValueError as exc:
        raise InvalidRequest(
            str(exc), errors=[{"field": "body.path", "message": str(exc), "type": "value_error"}]
        ) from exc
    async with runtime.sessions() as session:
        run = await store.run_state(session, run_id, principal.tenant_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    _, attempt = run
    objects = _object_store(request)
    artifact_id = uuid4()
    key = f"{principal.tenant_id}/{run_id}/{artifact_id}"
    content_type = file.content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    try:
        stored = await objects.put(
            key, _chunks(file), content_type=content_type, max_bytes=settings.max_artifact_bytes
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


@router.get(
    "/{artifact_id}",
    summary="Download an artifact (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses={
        200: {
            "description": "The artifact's bytes, in the content type it was uploaded with",
            "content": {"*/*": {"schema": {"type": "string"}}},
        },
        307: {"description": "Redirect to a presigned object-store URL"},
        401: PROBLEM,
        404: PROBLEM,
    },
)
async def download_artifact(
    request: Request,
    artifact_id: UUID,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    settings: SettingsDep,
    redirect: Annotated[
        bool,
        Query(
            description="false: the bytes come through the gateway even when the object store "
            "could serve them (a browser can read a presigned URL on another origin only if the "
            "store allows CORS)"
        ),
    ] = True,
) -> Response:
    async with runtime.sessions() as session:
        row = await store.get_artifact(session, artifact_id, principal.tenant_id)
    if row is None:
        raise ArtifactNotFound(f"artifact {artifact_id} not found")
    objects = _object_store(request)
    expires = timedelta(seconds=settings.object_store.presign_seconds)
    if redirect and (url := await objects.presigned_url(row.storage_key, expires)):
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
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

    name = PurePosixPath(row.path).name.replace('"', "")
    return StreamingResponse(
        stream(),
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size_bytes),
            "Content-Disposition": f'attachment; filename="{name}"',
            "ETag": f'"{row.checksum}"',
        },
    )


@router.delete(
    "/{artifact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an artifact and its stored object (admin)",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
async def delete_artifact(
    request: Request, artifact_id: UUID, principal: CurrentAdmin, runtime: RuntimeDep
) -> Response:
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
    await _object_store(request).delete(row.storage_key)
    log.info("artifact deleted", extra={"run_id": str(row.run_id), "path": row.path})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
