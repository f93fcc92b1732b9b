"""Artifact upload (multipart, up to 50 MB, sha256) and download (stream or presigned URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from controlroom_contracts.api import ArtifactView
from controlroom_gateway.api.deps import CurrentAdmin, CurrentOperator, CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.runs import artifacts

router = APIRouter(
    prefix="/api/v1/artifacts", tags=["artifacts"], route_class=InteroperableJsonRoute
)
UPLOAD_PATH = "/api/v1/artifacts"


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
    run_id: Annotated[UUID, Form()],
    path: Annotated[str, Form(min_length=1, max_length=512)],
    file: Annotated[UploadFile, File()],
    principal: CurrentOperator,
    gateway: GatewayDep,
) -> ArtifactView:
    return await artifacts.upload_artifact(
        gateway,
        principal,
        run_id=run_id,
        path=path,
        content=_chunks(file),
        content_type=file.content_type,
    )


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
    artifact_id: UUID,
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    redirect: Annotated[
        bool,
        Query(
            description="false: the bytes come through the gateway even when the object store "
            "could serve them (a browser can read a presigned URL on another origin only if the "
            "store allows CORS)"
        ),
    ] = True,
) -> Response:
    download = await artifacts.download_artifact(gateway, principal, artifact_id, redirect=redirect)
    if download.url is not None:
        return RedirectResponse(download.url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    assert download.chunks is not None
    row = download.artifact
    name = PurePosixPath(row.path).name.replace('"', "")
    return StreamingResponse(
        download.chunks,
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
    artifact_id: UUID, principal: CurrentAdmin, gateway: GatewayDep
) -> Response:
    await artifacts.delete_artifact(gateway, principal, artifact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
