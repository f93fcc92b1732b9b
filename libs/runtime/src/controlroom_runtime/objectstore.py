"""Artifact storage behind one interface: a local directory (dev) or S3/MinIO (minio SDK).

Every write streams through a size limit and a sha256; a write over the limit raises
:class:`ObjectTooLarge` and leaves no object behind. Deleting is idempotent: an object (or a
bucket) that is not there is already deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, Protocol

from minio import Minio
from pydantic import BaseModel, Field, SecretStr

CHUNK = 1 << 20


class ObjectTooLarge(Exception):
    """The object is larger than the limit given to ``put``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds {limit} bytes")
        self.limit = limit


class ObjectMissing(Exception):
    """No object under that key."""


class ObjectsNotDeleted(Exception):
    """The store refused to delete some of the objects under a prefix."""

    def __init__(self, prefix: str, failed: int, first_error: str) -> None:
        super().__init__(f"{failed} objects under {prefix!r} not deleted: {first_error}")
        self.prefix = prefix
        self.failed = failed


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


class ObjectStore(Protocol):
    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> StoredObject: ...

    def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """The object's bytes in chunks; closing it early releases the read."""
        ...

    async def delete(self, key: str) -> None:
        """Delete the object; one that is not there is no error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix`` (not empty); how many."""
        ...

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:
        """A URL the client may download from directly, or None to stream through us."""
        ...


class ObjectStoreSettings(BaseModel):
    """``CONTROLROOM_OBJECT_STORE__*`` when nested in a service's settings."""

    backend: Literal["local", "s3"] = "local"
    directory: Path = Path(".controlroom/artifacts")
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: SecretStr = SecretStr("minioadmin")
    s3_bucket: str = "controlroom-artifacts"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    presign_seconds: int = Field(default=900, ge=60)


def build_object_store(settings: ObjectStoreSettings) -> ObjectStore:
    if settings.backend == "s3":
        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return S3ObjectStore(client, settings.s3_bucket)
    return LocalObjectStore(settings.directory)


async def _spool(
    chunks: AsyncIterator[bytes], directory: Path, max_bytes: int
) -> tuple[Path, int, str]:
    """Write chunks to a temporary file in ``directory``, enforcing the limit as they come."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size, digest.hexdigest()


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root):
            raise ValueError(f"object key escapes the store: {key}")
        return path

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,  # noqa: ARG002 - kept by the caller's record; files have no type
        max_bytes: int,
    ) -> StoredObject:
        target = self._path(key)
        temp, size, sha = await _spool(chunks, self._root / ".incoming", max_bytes)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)  # atomic: readers never see half an object
        return StoredObject(key, size, sha)

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        _require_prefix(prefix)
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        # Keys are paths: everything under the prefix is in the folder it names ("t/run/"), or
        # in the folder of its last segment's siblings ("t/run" also matches "t/run2/x").
        folder = self._path(prefix) if prefix.endswith("/") else self._path(prefix).parent
        if not folder.is_dir():
            return 0
        deleted = 0
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            key = path.relative_to(self._root).as_posix()
            if not key.startswith(prefix) or key.startswith(".incoming/"):
                continue
            if path.is_dir():
                with contextlib.suppress(OSError):  # not empty: holds what does not match
                    path.rmdir()
            else:
                path.unlink(missing_ok=True)
                deleted += 1
        if prefix.endswith("/"):
            with contextlib.suppress(OSError):
                folder.rmdir()
        return deleted

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:  # noqa: ARG002
        return None  # a local directory has no URL of its own: the gateway streams it


class S3ObjectStore:
    """S3 or MinIO through the minio SDK (blocking calls run in worker threads)."""

    def __init__(self, client: Minio, bucket: str, spool_dir: Path | None = None) -> None:
        self._client = client
        self._bucket = bucket
        self._spool_dir = spool_dir or Path(tempfile.gettempdir()) / "controlroom-spool"
        self._bucket_ready = False

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        if not await asyncio.to_thread(self._client.bucket_exists, self._bucket):
            await asyncio.to_thread(self._client.make_bucket, self._bucket)
        self._bucket_ready = True

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> StoredObject:
        # Spooled first: the limit and the checksum are known before anything is uploaded.
        temp, size, sha = await _spool(chunks, self._spool_dir, max_bytes)
        try:
            await self._ensure_bucket()
            await asyncio.to_thread(
                self._client.fput_object,
                self._bucket,
                key,
                str(temp),
                content_type=content_type,
                metadata={"x-amz-meta-sha256": sha},
            )
        finally:
            temp.unlink(missing_ok=True)
        return StoredObject(key, size, sha)

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        from minio.error import S3Error

        try:
            response = await asyncio.to_thread(self._client.get_object, self._bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise ObjectMissing(key) from exc
            raise
        try:
            while chunk := await asyncio.to_thread(response.read, CHUNK):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def delete(self, key: str) -> None:
        from minio.error import S3Error

        try:
            await asyncio.to_thread(self._client.remove_object, self._bucket, key)
        except S3Error as exc:
            if exc.code != "NoSuchBucket":  # S3 answers a missing key with success already
                raise

    async def delete_prefix(self, prefix: str) -> int:
        _require_prefix(prefix)
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject
        from minio.error import S3Error

        try:
            names = [
                str(found.object_name)
                for found in self._client.list_objects(self._bucket, prefix=prefix, recursive=True)
            ]
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return 0
            raise
        if not names:
            return 0
        # One request per thousand keys; the answer lists only the keys that failed, and is
        # read to the end, or the requests are never sent.
        errors = list(self._client.remove_objects(self._bucket, (DeleteObject(n) for n in names)))
        if errors:
            raise ObjectsNotDeleted(prefix, len(errors), f"{errors[0].code}: {errors[0].message}")
        return len(names)

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:
        url: str = await asyncio.to_thread(
            self._client.presigned_get_object, self._bucket, key, expires=expires
        )
        return url


def _require_prefix(prefix: str) -> None:
    if not prefix:
        raise ValueError("an empty prefix would delete every object in the store")


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk
