"""What only the S3 store does, against the real SeaweedFS: credentials, buckets, versions, parts."""

from __future__ import annotations

import io
import logging
import socket
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from minio.error import S3Error

from storage import ObjectNotFound, S3Store, StorageAuthError, StorageError, StorageUnavailable
from tests.fixtures.seaweed import SeaweedServer
from tests.storage.streams import MIB, FailingStream, GeneratedStream, digest_of

pytestmark = pytest.mark.s3


def all_versions(seaweed: SeaweedServer, store: S3Store, key: str) -> list[tuple[str, bool]]:
    """Every version and delete marker of ``key``, seen from outside the store."""
    name = store.key_prefix + key
    return [
        (item.version_id, item.is_delete_marker)
        for item in seaweed.client().list_objects(
            bucket_name=seaweed.bucket, prefix=name, recursive=True, include_version=True
        )
        if item.object_name == name
    ]


@pytest.fixture
def spare_bucket(seaweed: SeaweedServer) -> Iterator[str]:
    """A bucket name that does not exist yet, removed (with its volumes) after the test.

    Only one such bucket exists at a time: every bucket grows volumes of its own.
    """
    name = f"vault-spare-{uuid.uuid4().hex[:12]}"
    yield name
    client = seaweed.client()
    if client.bucket_exists(bucket_name=name):
        for item in client.list_objects(bucket_name=name, recursive=True, include_version=True):
            client.remove_object(bucket_name=name, object_name=item.object_name, version_id=item.version_id)
        client.remove_bucket(bucket_name=name)


def test_the_shared_bucket_has_object_lock(s3_store: S3Store) -> None:
    assert s3_store.supports_retention
    assert s3_store.describe().endswith("with Object Lock")


def test_ensure_ready_creates_a_missing_bucket_with_object_lock(seaweed: SeaweedServer, spare_bucket: str) -> None:
    store = seaweed.store(bucket=spare_bucket)
    with pytest.raises(StorageUnavailable, match=f"bucket '{spare_bucket}' does not exist.*run ensure_ready"):
        store.check()
    with pytest.raises(StorageUnavailable, match="does not exist"):
        store.put("k", io.BytesIO(b"x"))

    store.ensure_ready()
    store.check()
    store.ensure_ready()  # a second call finds the bucket and leaves it alone
    assert store.supports_retention
    assert seaweed.client().bucket_exists(bucket_name=spare_bucket)
    store.put("k", io.BytesIO(b"x"))
    assert store.open("k").read() == b"x"
    store.delete("k")


def test_a_server_refusing_object_lock_still_gets_a_bucket(
    seaweed: SeaweedServer, spare_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = seaweed.store(bucket=spare_bucket)
    client = store._client
    real_make_bucket = client.make_bucket

    def make_bucket_without_object_lock(bucket_name: str, location: str | None = None, object_lock: bool = False):
        # SeaweedFS supports Object Lock; a server that does not answers like this.
        if object_lock:
            raise S3Error(None, "InvalidRequest", "Object Lock is not supported", f"/{bucket_name}", None, None)
        return real_make_bucket(bucket_name=bucket_name, location=location)

    monkeypatch.setattr(client, "make_bucket", make_bucket_without_object_lock)
    with caplog.at_level(logging.WARNING, logger="storage.s3"):
        store.ensure_ready()
    assert "refused a bucket with Object Lock (InvalidRequest)" in caplog.text
    assert not store.supports_retention
    assert store.describe().endswith("without Object Lock")

    # Retention cannot be enforced there: the record is still stored, and the gap is logged.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="storage.s3"):
        store.put("checkpoint", io.BytesIO(b"{}"), retain_until=datetime.now(UTC) + timedelta(days=1))
    assert "stored without retention" in caplog.text
    store.put("checkpoint", io.BytesIO(b"{}"))  # an unversioned bucket simply replaces it
    store.delete("checkpoint")
    assert all_versions(seaweed, store, "checkpoint") == []


@pytest.mark.parametrize("object_lock", [True, False])
def test_a_bucket_created_meanwhile_by_someone_else_is_fine(
    seaweed: SeaweedServer, spare_bucket: str, monkeypatch: pytest.MonkeyPatch, object_lock: bool
) -> None:
    store = seaweed.store(bucket=spare_bucket, object_lock=object_lock)
    # Another process creates the bucket between our existence check and our creation request.
    monkeypatch.setattr(store._client, "bucket_exists", lambda bucket_name: False)
    seaweed.client().make_bucket(bucket_name=spare_bucket, object_lock=object_lock)
    store.ensure_ready()
    assert store.supports_retention is object_lock


def test_a_bucket_without_object_lock_when_asked(seaweed: SeaweedServer, spare_bucket: str) -> None:
    store = seaweed.store(bucket=spare_bucket, object_lock=False)
    store.ensure_ready()
    assert not store.supports_retention
    store.put("k", io.BytesIO(b"x"))
    store.delete("k")
    assert all_versions(seaweed, store, "k") == []


def test_a_refused_bucket_creation_is_an_auth_error_not_a_fallback(
    seaweed: SeaweedServer, spare_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seaweed.store(bucket=spare_bucket)
    attempts: list[bool] = []

    def make_bucket_refused(bucket_name: str, location: str | None = None, object_lock: bool = False):
        # An account allowed to use the bucket but not to create one.
        attempts.append(object_lock)
        raise S3Error(None, "AccessDenied", "Access Denied.", f"/{bucket_name}", None, None)

    monkeypatch.setattr(store._client, "make_bucket", make_bucket_refused)
    with pytest.raises(StorageAuthError, match="AccessDenied"):
        store.ensure_ready()
    assert attempts == [True]


def test_a_refused_bucket_creation_without_object_lock_is_an_auth_error(
    seaweed: SeaweedServer, spare_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same refusal when no Object Lock is asked: raised, not taken for a bucket made meanwhile. The
    refusal is injected: the test server's one identity may create buckets."""
    store = seaweed.store(bucket=spare_bucket, object_lock=False)

    def make_bucket_refused(bucket_name: str, location: str | None = None, object_lock: bool = False):
        raise S3Error(None, "AccessDenied", "Access Denied.", f"/{bucket_name}", None, None)

    monkeypatch.setattr(store._client, "make_bucket", make_bucket_refused)
    with pytest.raises(StorageAuthError, match="AccessDenied"):
        store.ensure_ready()


def test_a_delete_cut_off_midway_is_unavailable_and_keeps_the_object(
    seaweed: SeaweedServer, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a versioned bucket a delete removes version after version; the connection lost before the first
    (here: the removal sent to a closed port, a real connection refused) is the store's error, and the
    object is still there."""
    s3_store.put("documents/1/x", io.BytesIO(b"one"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = S3Store(endpoint=f"127.0.0.1:{port}", access_key="a", secret_key="b", bucket=seaweed.bucket,
                   secure=False, region="us-east-1")
    monkeypatch.setattr(s3_store._client, "remove_object", dead._client.remove_object)
    with pytest.raises(StorageUnavailable, match="cannot reach the S3 endpoint to delete 'documents/1/x'"):
        s3_store.delete("documents/1/x")
    monkeypatch.undo()
    with s3_store.open("documents/1/x") as stored:
        assert stored.read() == b"one"


def test_a_key_the_server_finds_too_long_is_a_storage_error(seaweed: SeaweedServer) -> None:
    # Valid on its own (under 1024 bytes), too long once the store's prefix is put in front.
    store = seaweed.store(key_prefix="p" * 200 + "/")
    key = "k" * 1000
    with pytest.raises(StorageError, match="KeyTooLongError"):
        store.put(key, io.BytesIO(b"x"))
    assert list(store.list()) == []


@pytest.mark.parametrize("credentials", [("right-key", "wrong-secret"), ("unknown-key", "any-secret")])
def test_wrong_credentials_are_an_auth_error(seaweed: SeaweedServer, credentials: tuple[str, str]) -> None:
    access_key, secret_key = credentials
    if access_key == "right-key":
        access_key = seaweed.access_key
    store = seaweed.store(access_key=access_key, secret_key=secret_key)
    operations = {
        "check": store.check,
        "ensure_ready": store.ensure_ready,
        "put": lambda: store.put("k", io.BytesIO(b"x")),
        "open": lambda: store.open("k"),
        "stat": lambda: store.stat("k"),
        "list": lambda: list(store.list()),
    }
    for name, operation in operations.items():
        with pytest.raises(StorageAuthError) as raised:
            operation()
        message = str(raised.value)
        assert seaweed.endpoint in message, name
        assert "check the access key and secret key" in message
        assert secret_key not in message
        assert seaweed.secret_key not in message


def test_delete_removes_every_version(seaweed: SeaweedServer, s3_store: S3Store) -> None:
    s3_store.put("documents/1/x", io.BytesIO(b"one"))
    s3_store.put("documents/1/x", io.BytesIO(b"two"))
    s3_store.put("documents/1/xy", io.BytesIO(b"neighbour"))
    assert len(all_versions(seaweed, s3_store, "documents/1/x")) == 2

    s3_store.delete("documents/1/x")

    # No delete marker hiding old bytes: the versions are gone.
    assert all_versions(seaweed, s3_store, "documents/1/x") == []
    assert [info.key for info in s3_store.list()] == ["documents/1/xy"]


@pytest.mark.parametrize(("part_size", "parts"), [(16 * MIB, 2), (5 * MIB, 5)])
def test_large_streams_go_up_in_parts(seaweed: SeaweedServer, part_size: int, parts: int) -> None:
    store = seaweed.store(part_size=part_size)
    source = GeneratedStream(21 * MIB, seed=3)
    info = store.put("big", source)
    # A multipart ETag ends with the number of parts.
    assert info.etag is not None and info.etag.endswith(f"-{parts}")
    with store.open("big") as stream:
        assert digest_of(stream) == source.digest()


def test_the_key_prefix_is_invisible_to_callers(seaweed: SeaweedServer) -> None:
    tenant = seaweed.store(key_prefix="tenant-a/")
    other = seaweed.store(key_prefix="tenant-b/")
    tenant.put("documents/1", io.BytesIO(b"a"))
    other.put("documents/1", io.BytesIO(b"b"))

    assert [info.key for info in tenant.list()] == ["documents/1"]
    assert tenant.open("documents/1").read() == b"a"
    assert tenant.describe().endswith("under 'tenant-a/', with Object Lock")
    raw = seaweed.client().stat_object(bucket_name=seaweed.bucket, object_name="tenant-a/documents/1")
    assert raw.size == 1
    tenant.delete("documents/1")
    assert other.open("documents/1").read() == b"b"
    other.delete("documents/1")


def test_a_network_error_of_the_source_stream_is_not_a_storage_error(s3_store: S3Store) -> None:
    # The caller's stream may itself be a download: its urllib3 error is the caller's, not ours.
    for good in (1000, 20 * MIB):
        failure = urllib3.exceptions.ProtocolError("the upstream download was cut")
        with pytest.raises(urllib3.exceptions.ProtocolError) as raised:
            s3_store.put("k", FailingStream(good, error=failure))
        assert raised.value is failure
        assert not s3_store.exists("k")


def test_open_stream_can_be_closed_early_and_read_whole(s3_store: S3Store) -> None:
    s3_store.put("big", GeneratedStream(8 * MIB))
    # More early closes than the connection pool holds: each must give its connection back.
    for _ in range(12):
        with s3_store.open("big") as stream:
            assert len(stream.read(1000)) == 1000
    s3_store.put("small", io.BytesIO(b"whole"))
    with s3_store.open("small") as stream:
        assert stream.readable()
        assert stream.readall() == b"whole"
    stream.close()  # closing twice is harmless
    with pytest.raises(ObjectNotFound):
        s3_store.open("missing")


def upload_peak(store: S3Store, size: int) -> int:
    tracemalloc.start()
    try:
        store.put("big", GeneratedStream(size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_upload_memory_is_bounded_by_the_part_size(seaweed: SeaweedServer) -> None:
    store = seaweed.store(part_size=5 * MIB, parallel_uploads=1)
    small = upload_peak(store, 11 * MIB)
    large = upload_peak(store, 41 * MIB)
    # A few part-sized buffers (the reused read buffer, the part handed to minio, minio's copies when
    # it splits off the byte it reads ahead), never the object.
    assert large < 5 * store.part_size
    assert large <= small + MIB


def test_download_memory_stays_flat(s3_store: S3Store) -> None:
    source = GeneratedStream(24 * MIB)
    s3_store.put("big", source)
    tracemalloc.start()
    try:
        with s3_store.open("big") as stream:
            digest = digest_of(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == source.digest()
    assert peak < 4 * MIB
