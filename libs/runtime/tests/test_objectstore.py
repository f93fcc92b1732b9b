"""Both object-store backends: the local directory, and S3 through minio against moto_server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from minio import Minio

from controlroom_runtime.objectstore import (
    LocalObjectStore,
    ObjectMissing,
    ObjectStore,
    ObjectTooLarge,
    S3ObjectStore,
)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("moto_endpoint")
    client = Minio(
        endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )
    return S3ObjectStore(client, f"b{time.monotonic_ns()}", spool_dir=tmp_path / "spool")


async def _chunks(data: bytes, size: int = 1 << 16) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(key)])


async def test_round_trip_keeps_bytes_and_checksum(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB
    stored = await store.put(
        "t1/run/output/a.bin",
        _chunks(data),
        content_type="application/octet-stream",
        max_bytes=50 << 20,
    )
    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await _read(store, "t1/run/output/a.bin") == data


async def test_over_the_limit_leaves_no_object(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectTooLarge):
        await store.put("t1/big", _chunks(b"x" * 5000), content_type="text/plain", max_bytes=4096)
    with pytest.raises(ObjectMissing):
        await _read(store, "t1/big")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


async def test_missing_object(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing):
        await _read(store, "nope")


async def test_presigned_url_downloads_from_s3_directly(moto_endpoint: str, tmp_path: Path) -> None:
    client = Minio(
        moto_endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )
    store = S3ObjectStore(client, "presign", spool_dir=tmp_path)
    await store.put("k/report.csv", _chunks(b"a,b\n1,2\n"), content_type="text/csv", max_bytes=1024)
    url = await store.presigned_url("k/report.csv", timedelta(minutes=5))
    assert url is not None and "X-Amz-Signature" in url
    assert httpx.get(url).content == b"a,b\n1,2\n"


def test_local_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        LocalObjectStore(tmp_path)._path("../../etc/passwd")


async def test_delete_prefix_removes_every_object_under_it_and_nothing_else(
    store: ObjectStore,
) -> None:
    keys = ["t1/run1/a", "t1/run1/sub/b", "t1/run10/c", "t1/run2/d", "t2/run1/e"]
    for key in keys:
        await store.put(key, _chunks(key.encode()), content_type="text/plain", max_bytes=1024)
    assert await store.delete_prefix("t1/run1/") == 2
    for gone in ("t1/run1/a", "t1/run1/sub/b"):
        with pytest.raises(ObjectMissing):
            await _read(store, gone)
    for kept in ("t1/run10/c", "t1/run2/d", "t2/run1/e"):
        assert await _read(store, kept) == kept.encode()
    assert await store.delete_prefix("t1/run1/") == 0  # again: nothing left, no error
    await store.delete("t1/run2/d")
    await store.delete("t1/run2/d")  # a missing object is no error either


async def test_delete_prefix_of_a_store_never_written_is_zero(
    moto_endpoint: str, tmp_path: Path
) -> None:
    client = Minio(
        moto_endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )
    assert await S3ObjectStore(client, f"none{time.monotonic_ns()}").delete_prefix("t/") == 0
    assert await LocalObjectStore(tmp_path / "never").delete_prefix("t/") == 0
