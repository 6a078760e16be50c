"""The object-store contract: every test here runs against LocalStore and against S3Store on SeaweedFS.

One suite for all backends (as fsspec does) is what lets the rest of vault treat them as one: a
behaviour that differs between backends shows up here as a failure of one parametrization.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest

from storage import ObjectInfo, ObjectLocked, ObjectNotFound, ObjectStore
from tests.storage.streams import MIB, Boom, FailingStream, GeneratedStream, ReadOnlyStream, TrickleStream, digest_of

# Larger than S3Store's 16 MiB part: the S3 run goes through a real multipart upload.
MULTIPART_SIZE = 20 * MIB


def put_bytes(store: ObjectStore, key: str, data: bytes, **options) -> ObjectInfo:
    return store.put(key, io.BytesIO(data), length=len(data), **options)


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key for info in store.list(prefix)]


def test_check_and_ensure_ready_on_a_ready_store(store: ObjectStore) -> None:
    store.check()
    store.ensure_ready()  # idempotent on a ready store
    store.check()


@pytest.mark.parametrize("size", [0, 1, 5000, MULTIPART_SIZE], ids=["0B", "1B", "5kB", "20MiB"])
@pytest.mark.parametrize("known_length", [True, False], ids=["known-length", "unknown-length"])
def test_put_then_read_back(store: ObjectStore, size: int, known_length: bool) -> None:
    source = GeneratedStream(size, seed=size)
    info = store.put("documents/1/blob", source, length=size if known_length else None)

    assert info.key == "documents/1/blob"
    assert info.size == size
    with store.open("documents/1/blob") as stream:
        assert digest_of(stream) == source.digest()
    stat = store.stat("documents/1/blob")
    assert (stat.key, stat.size) == ("documents/1/blob", size)
    assert stat.etag == info.etag
    assert stat.modified is not None and stat.modified.tzinfo is not None


@pytest.mark.parametrize("kind", ["readinto", "read-only"])
def test_put_accepts_streams_returning_short_reads(store: ObjectStore, kind: str) -> None:
    data = bytes(range(256)) * 40
    stream = TrickleStream(data, step=7) if kind == "readinto" else ReadOnlyStream(data, step=7)
    info = store.put("trickle", stream)
    assert info.size == len(data)
    assert read_all(store, "trickle") == data


def test_a_read_only_stream_longer_than_one_read_is_stored_whole(store: ObjectStore) -> None:
    """A stream without ``readinto`` is read in pieces until each of the backend's reads is full (the local
    store reads a MiB at a time), not only until it ends."""
    data = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    info = store.put("pieces", ReadOnlyStream(data, step=64 * 1024))
    assert info.size == len(data)
    assert read_all(store, "pieces") == data


def test_a_read_only_stream_is_checked_like_any_other(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="fewer bytes than the announced length"):
        store.put("short", ReadOnlyStream(b"x" * 10, step=3), length=11)
    with pytest.raises(ValueError, match="more bytes than the announced length"):
        store.put("long", ReadOnlyStream(b"x" * 10, step=3), length=9)
    failure = Boom("read-only source failed")
    with pytest.raises(Boom) as raised:
        store.put("failing", ReadOnlyStream(b"x" * 10, step=3, error=failure))
    assert raised.value is failure
    assert keys(store) == []


def test_open_streams_in_bounded_reads_and_closes(store: ObjectStore) -> None:
    put_bytes(store, "a/b", b"0123456789")
    stream = store.open("a/b")
    with stream:
        assert stream.read(4) == b"0123"
        buffer = bytearray(3)
        assert stream.readinto(buffer) == 3
        assert bytes(buffer) == b"456"
        assert stream.read(100) == b"789"
        assert stream.read(100) == b""
    assert stream.closed
    with pytest.raises(ValueError):
        stream.read(1)


def test_overwrite_replaces_the_content(store: ObjectStore) -> None:
    put_bytes(store, "k", b"first version")
    info = put_bytes(store, "k", b"second")
    assert info.size == 6
    assert read_all(store, "k") == b"second"
    assert [(i.key, i.size) for i in store.list()] == [("k", 6)]


def test_list_is_sorted_and_filtered_by_plain_prefix(store: ObjectStore) -> None:
    # '-' sorts before '/', which sorts before letters: a filesystem walk that visits folder "a" as a
    # whole before "a-b" would get this order wrong.
    names = ["b", "a/2", "ab", "a/b/c", "a-b", "a/1", "audit/checkpoints/000000001234.json"]
    for index, name in enumerate(names):
        put_bytes(store, name, b"x" * index)

    listed = list(store.list())
    assert [info.key for info in listed] == sorted(names)
    assert {info.key: info.size for info in listed} == {name: index for index, name in enumerate(names)}
    assert all(isinstance(info, ObjectInfo) for info in listed)
    assert keys(store, "a/") == ["a/1", "a/2", "a/b/c"]
    assert keys(store, "a") == ["a-b", "a/1", "a/2", "a/b/c", "ab", "audit/checkpoints/000000001234.json"]
    assert keys(store, "a/b") == ["a/b/c"]
    assert keys(store, "a/b/") == ["a/b/c"]
    assert keys(store, "au") == ["audit/checkpoints/000000001234.json"]
    assert keys(store, "audit/checkpoints/0000") == ["audit/checkpoints/000000001234.json"]
    assert keys(store, "zzz") == []
    assert keys(store, "b/") == []
    assert keys(store, "nothing/here/") == []


def test_list_of_an_empty_store_is_empty(store: ObjectStore) -> None:
    assert keys(store) == []


def test_delete_removes_the_object(store: ObjectStore) -> None:
    put_bytes(store, "documents/7/x", b"data")
    put_bytes(store, "documents/7/y", b"kept")
    assert store.exists("documents/7/x")

    store.delete("documents/7/x")

    assert not store.exists("documents/7/x")
    assert keys(store) == ["documents/7/y"]
    with pytest.raises(ObjectNotFound):
        store.stat("documents/7/x")
    with pytest.raises(ObjectNotFound):
        store.delete("documents/7/x")


def test_delete_of_an_overwritten_object_leaves_nothing(store: ObjectStore) -> None:
    put_bytes(store, "k", b"one")
    put_bytes(store, "k", b"two")
    store.delete("k")
    assert not store.exists("k")
    assert keys(store) == []
    put_bytes(store, "k", b"three")  # the key is usable again
    assert read_all(store, "k") == b"three"


@pytest.mark.parametrize("operation", ["open", "stat", "delete"])
def test_missing_objects_raise_object_not_found(store: ObjectStore, operation: str) -> None:
    put_bytes(store, "present/one", b"x")
    for key in ("missing", "present/two", "present"):
        with pytest.raises(ObjectNotFound) as raised:
            getattr(store, operation)(key)
        assert repr(key) in str(raised.value)
        assert not store.exists(key)


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "documents/../../outside",
    "documents/..",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "..\\outside",
    "a\x00b",
    "line\nbreak",
    "tab\there",
    "del\x7f",
    "c1\x85control",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_refused_by_every_operation(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, io.BytesIO(b"x"), length=1)
    for operation in ("open", "stat", "delete", "exists"):
        with pytest.raises(ValueError):
            getattr(store, operation)(key)
    assert keys(store) == []


@pytest.mark.parametrize("key", [None, 12, b"documents/1"])
def test_keys_must_be_strings(store: ObjectStore, key) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        store.put(key, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="must be a string"):
        store.stat(key)
    with pytest.raises(ValueError, match="must be a string"):
        list(store.list(key))


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a//", "a\\", "a\x00"])
def test_invalid_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(store.list(prefix))


def test_unusual_but_valid_keys_round_trip(store: ObjectStore) -> None:
    names = ["documents/été/naïve file (1).pdf", "a b/c+d=e&f", "日本/書類", "...dots/x..y", "x" * 200]
    for name in names:
        put_bytes(store, name, name.encode())
    for name in names:
        assert read_all(store, name) == name.encode()
    assert keys(store) == sorted(names)


@pytest.mark.parametrize("good", [0, 1000, MULTIPART_SIZE], ids=["at-once", "after-1kB", "after-20MiB"])
def test_a_failing_stream_leaves_no_object(store: ObjectStore, good: int) -> None:
    source = FailingStream(good)
    with pytest.raises(Boom) as raised:
        store.put("documents/9/partial", source)
    assert raised.value is source.error
    assert not store.exists("documents/9/partial")
    assert keys(store) == []


def test_a_failing_overwrite_keeps_the_previous_object(store: ObjectStore) -> None:
    put_bytes(store, "k", b"precious")
    with pytest.raises(Boom):
        store.put("k", FailingStream(MULTIPART_SIZE))
    assert read_all(store, "k") == b"precious"
    assert keys(store) == ["k"]


@pytest.mark.parametrize(
    ("announced", "actual"), [(10, 5), (5, 10), (0, 1), (1, 0), (MULTIPART_SIZE, MULTIPART_SIZE - 1)]
)
def test_a_stream_of_the_wrong_length_is_refused(store: ObjectStore, announced: int, actual: int) -> None:
    put_bytes(store, "kept", b"old")
    with pytest.raises(ValueError, match="bytes than the announced length"):
        store.put("new", GeneratedStream(actual), length=announced)
    with pytest.raises(ValueError, match="bytes than the announced length"):
        store.put("kept", GeneratedStream(actual), length=announced)
    assert keys(store) == ["kept"]
    assert read_all(store, "kept") == b"old"


@pytest.mark.parametrize("length", [-1, 1.5, True])
def test_a_bad_length_argument_is_refused(store: ObjectStore, length) -> None:
    with pytest.raises(ValueError, match="length"):
        store.put("k", io.BytesIO(b"x"), length=length)
    assert not store.exists("k")


def test_retain_until_must_be_aware_and_in_the_future(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        put_bytes(store, "k", b"x", retain_until=datetime.now() + timedelta(days=1))
    with pytest.raises(ValueError, match="not in the future"):
        put_bytes(store, "k", b"x", retain_until=datetime.now(UTC) - timedelta(seconds=1))
    assert not store.exists("k")


def test_retained_objects_cannot_be_deleted_or_overwritten_until_the_date(store: ObjectStore) -> None:
    # The seaweed bucket is created with Object Lock: retention must really be enforced on both.
    assert store.supports_retention
    until = datetime.now(UTC) + timedelta(seconds=2)
    first, second = "audit/checkpoints/000000001234.json", "audit/checkpoints/000000001235.json"
    put_bytes(store, first, b'{"head": "abc"}', retain_until=until)
    put_bytes(store, second, b'{"head": "def"}', retain_until=until)

    with pytest.raises(ObjectLocked, match="retained until"):
        store.delete(first)
    with pytest.raises(ObjectLocked, match="retained until"):
        put_bytes(store, first, b"forged")
    with pytest.raises(ObjectLocked, match="retained until"):
        store.put(second, FailingStream(10))  # refused before the stream is even read
    assert read_all(store, first) == b'{"head": "abc"}'
    assert keys(store, "audit/") == [first, second]
    put_bytes(store, "audit/other", b"unaffected")
    store.delete("audit/other")

    # S3 keeps retention dates to the second; wait past the truncated date with a margin.
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.1)
    store.delete(first)
    assert not store.exists(first)
    put_bytes(store, second, b"replaced")  # an expired retention no longer protects the object...
    assert read_all(store, second) == b"replaced"
    store.delete(second)  # ...and the new version carries none
    assert keys(store) == []


def test_describe_names_the_place(store: ObjectStore) -> None:
    text = store.describe()
    assert text
    assert "\n" not in text
