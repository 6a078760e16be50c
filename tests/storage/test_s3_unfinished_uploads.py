"""Unfinished multipart uploads of the S3 store, against the real SeaweedFS: listed under the store's prefix
with their parts' size and latest time, aborted only when idle, paged without loss or loops.

(`tests/documents/test_fsck_s3.py` tries the same through `vault fsck` with an upload really killed
mid-way; these pin the store's own contract, which the storage coverage floor measures.)
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from minio import Minio
from minio.datatypes import ListMultipartUploadsResult
from minio.error import S3Error

import storage.s3 as s3_module
from storage import LeavesUnfinishedUploads, S3Store, StorageAuthError, StorageUnavailable, UnfinishedUpload
from tests.fixtures.seaweed import SeaweedServer

pytestmark = pytest.mark.s3


def _begin(seaweed: SeaweedServer, store: S3Store, key: str, parts: tuple[bytes, ...] = (b"part one",)) -> str:
    """Begin a multipart upload of ``key`` under the store's prefix and send ``parts``, as a writer killed
    before completing would leave it; its upload id."""
    client = seaweed.client()
    name = store.key_prefix + key
    upload_id = client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=name, headers={})
    for number, data in enumerate(parts, start=1):
        client._upload_part(bucket_name=seaweed.bucket, object_name=name, data=data, headers=None,
                            upload_id=upload_id, part_number=number)
    return upload_id


def _mine(store: S3Store) -> dict[str, UnfinishedUpload]:
    return {upload.upload_id: upload for upload in store.unfinished_uploads()}


def test_an_unfinished_upload_is_listed_with_its_parts_under_the_prefix_only(seaweed: SeaweedServer) -> None:
    store, other = seaweed.store(), seaweed.store()
    assert isinstance(store, LeavesUnfinishedUploads)
    before = datetime.now(UTC) - timedelta(minutes=1)
    upload_id = _begin(seaweed, store, "documents/7/1-abc", (b"x" * 1000, b"y" * 24))
    foreign = _begin(seaweed, other, "documents/8/1-def")
    listed = _mine(store)
    assert set(listed) == {upload_id}  # another prefix's upload is not ours to report nor abort
    upload = listed[upload_id]
    assert upload.key == "documents/7/1-abc" and upload.size == 1024
    assert upload.initiated.tzinfo is not None and upload.initiated >= before
    assert upload.last_activity >= upload.initiated
    assert set(_mine(other)) == {foreign}


def test_an_idle_upload_is_aborted_once_and_a_recent_one_is_left(seaweed: SeaweedServer) -> None:
    store = seaweed.store()
    upload_id = _begin(seaweed, store, "documents/9/1-aaa")
    (upload,) = _mine(store).values()
    # Active at or after the cut-off: left alone, still listed.
    assert store.abort_upload(upload, active_before=upload.last_activity) is False
    assert upload_id in _mine(store)
    # Idle since before the cut-off: aborted, gone, and a second abort finds nothing to do.
    cutoff = datetime.now(UTC) + timedelta(minutes=1)
    assert store.abort_upload(upload, active_before=cutoff) is True
    assert _mine(store) == {}
    assert store.abort_upload(upload, active_before=cutoff) is False


def test_an_upload_with_a_bad_key_is_refused_before_any_request(seaweed: SeaweedServer) -> None:
    store = seaweed.store()
    now = datetime.now(UTC)
    with pytest.raises(ValueError):
        store.abort_upload(UnfinishedUpload(key="../escape", upload_id="x", initiated=now, last_activity=now,
                                            size=0), active_before=now)


def test_pages_of_uploads_and_of_parts_are_followed_without_loss(seaweed: SeaweedServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One upload and one part a page: every upload listed once, every part's bytes counted.

    Was: the next page was asked from the last upload's key and id, which SeaweedFS reads as "uploads of
    that key only", so the listing ended after its first page (here: one upload of five). Now a server that
    names no next key is paged by upload id alone, and every upload comes, two of one key included."""
    store = seaweed.store()
    keys = ["documents/1/1-p", "documents/2/1-p", "documents/2/1-p", "documents/3/1-p", "audit/x"]
    ids = {_begin(seaweed, store, key, (b"a" * 10, b"b" * 5)) for key in keys}
    monkeypatch.setattr(s3_module, "_LISTING_PAGE", 1)
    listed = list(store.unfinished_uploads())
    assert sorted(upload.upload_id for upload in listed) == sorted(ids)
    assert all(upload.size == 15 for upload in listed)


def test_more_than_a_thousand_uploads_are_all_listed(seaweed: SeaweedServer) -> None:
    """Past the server's 1,000 a page, as a bucket with a long history of killed uploads would hold them."""
    store = seaweed.store()
    client = seaweed.client()
    def begin(name: str) -> tuple[str, str]:
        return client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=name, headers={}), name

    def abort(upload: tuple[str, str]) -> None:
        client._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=upload[1], upload_id=upload[0])

    with ThreadPoolExecutor(4) as pool:
        names = dict(pool.map(begin, (f"{store.key_prefix}d/{n}" for n in range(1003))))
    try:
        listed = [upload.upload_id for upload in store.unfinished_uploads()]
        assert len(listed) == len(names) and set(listed) == set(names)
    finally:  # the bucket is shared by the session's tests: leave none of them behind
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(abort, names.items()))


def test_a_server_that_names_the_next_key_is_paged_from_key_and_upload_id(seaweed: SeaweedServer,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 (AWS, MinIO, Ceph) names the next key of a truncated page and pages on from a key and an upload id
    together (an upload-id marker alone it ignores). SeaweedFS names none, so its answer is given one here,
    the fault injected; what is checked is the next request, not the (then shortened) listing."""
    store = seaweed.store()
    for n in range(2):
        _begin(seaweed, store, f"documents/{n}/1-k", ())
    client = store._client
    real = client._list_multipart_uploads
    asked: list[tuple[str | None, str | None]] = []

    def standard(**arguments: Any) -> ListMultipartUploadsResult:
        asked.append((arguments["key_marker"], arguments["upload_id_marker"]))
        page = real(**arguments)
        if page.is_truncated and page.uploads:
            object.__setattr__(page, "next_key_marker", page.uploads[-1].object_name)
        return page

    monkeypatch.setattr(client, "_list_multipart_uploads", standard)
    monkeypatch.setattr(s3_module, "_LISTING_PAGE", 1)
    first = next(iter(store.unfinished_uploads()))
    listed = list(store.unfinished_uploads())
    assert listed and listed[0].upload_id == first.upload_id
    assert asked[0] == (None, None) and (store.key_prefix + first.key, first.upload_id) in asked


def test_a_refused_or_unreachable_server_is_a_storage_error(seaweed: SeaweedServer) -> None:
    refused = seaweed.store(secret_key="wrong-secret")
    with pytest.raises(StorageAuthError):
        list(refused.unfinished_uploads())
    now = datetime.now(UTC)
    with pytest.raises(StorageAuthError):
        refused.abort_upload(UnfinishedUpload(key="documents/1/1-x", upload_id="x", initiated=now,
                                              last_activity=now, size=0), active_before=now)
    down = S3Store(endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket=seaweed.bucket, secure=False)
    with pytest.raises(StorageUnavailable):
        list(down.unfinished_uploads())


def test_an_upload_gone_meanwhile_is_not_aborted(seaweed: SeaweedServer) -> None:
    store = seaweed.store()
    _begin(seaweed, store, "documents/5/1-gone")
    (upload,) = _mine(store).values()
    seaweed.client()._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=store.key_prefix + upload.key,
                                             upload_id=upload.upload_id)
    assert store.abort_upload(upload, active_before=datetime.now(UTC) + timedelta(minutes=1)) is False


# -- the fault branches, each tried here (the storage coverage floor counts only this suite) -------------

def _dead_client() -> Minio:
    """The client of a store at a closed port (with the store's own short timeouts): a real connection
    refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return S3Store(endpoint=f"127.0.0.1:{port}", access_key="a", secret_key="b", bucket="vault", secure=False,
                   region="us-east-1")._client


def test_a_server_ignoring_the_prefix_still_shows_no_other_uploads(seaweed: SeaweedServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """SeaweedFS keeps to the prefix asked; a server that did not would hand over another tenant's uploads,
    which are neither reported nor aborted. The fault injected: the prefix dropped from the request."""
    store, other = seaweed.store(), seaweed.store()
    ours = _begin(seaweed, store, "documents/1/1-a")
    theirs = _begin(seaweed, other, "documents/1/1-a")
    real = store._client._list_multipart_uploads
    monkeypatch.setattr(store._client, "_list_multipart_uploads",
                        lambda **arguments: real(**{**arguments, "prefix": None}))
    assert set(_mine(store)) == {ours}
    assert theirs in _mine(other)


def test_an_upload_gone_between_the_listing_and_its_parts_is_left_out(seaweed: SeaweedServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Completed or aborted by its writer right after the listing named it: not reported. The moment is
    injected, by aborting it for real as the listing's answer arrives."""
    store = seaweed.store()
    gone = _begin(seaweed, store, "documents/1/1-gone")
    kept = _begin(seaweed, store, "documents/2/1-kept")
    real = store._client._list_multipart_uploads

    def then_one_ends(**arguments: Any) -> ListMultipartUploadsResult:
        page = real(**arguments)
        seaweed.client()._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=store.key_prefix
                                                 + "documents/1/1-gone", upload_id=gone)
        return page

    monkeypatch.setattr(store._client, "_list_multipart_uploads", then_one_ends)
    assert set(_mine(store)) == {kept}


def test_an_upload_a_part_later_is_active_as_of_that_part(seaweed: SeaweedServer) -> None:
    store = seaweed.store()
    client = seaweed.client()
    name = store.key_prefix + "documents/3/1-late"
    upload_id = client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=name, headers={})
    time.sleep(1.1)  # the server keeps times to the second
    client._upload_part(bucket_name=seaweed.bucket, object_name=name, data=b"late", headers=None,
                        upload_id=upload_id, part_number=1)
    [upload] = store.unfinished_uploads()
    assert upload.size == 4 and upload.last_activity > upload.initiated


def test_an_upload_gone_just_before_its_abort_is_not_counted(seaweed: SeaweedServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers NoSuchUpload to an abort of an upload no longer there (SeaweedFS answers success, so its
    answer is the fault injected here, after a real abort)."""
    store = seaweed.store()
    upload_id = _begin(seaweed, store, "documents/4/1-raced")
    (upload,) = _mine(store).values()
    real = store._client._abort_multipart_upload

    def as_s3_answers(**arguments: Any) -> None:
        real(**arguments)
        raise S3Error(None, "NoSuchUpload", "The specified upload does not exist.", "/", None, None)

    monkeypatch.setattr(store._client, "_abort_multipart_upload", as_s3_answers)
    assert store.abort_upload(upload, active_before=datetime.now(UTC) + timedelta(minutes=1)) is False
    assert upload_id not in _mine(store)


@pytest.mark.parametrize("fault", ["refused", "unreachable"])
def test_an_abort_refused_or_cut_off_is_a_storage_error_and_aborts_nothing(
    seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The parts were listed, then the abort itself fails: signed with a wrong secret (a real refusal by
    SeaweedFS) or sent to a closed port (a real connection refused). The upload stays."""
    store = seaweed.store()
    upload_id = _begin(seaweed, store, "documents/5/1-kept")
    (upload,) = _mine(store).values()
    client = seaweed.store(secret_key="wrong-secret")._client if fault == "refused" else _dead_client()
    monkeypatch.setattr(store._client, "_abort_multipart_upload", client._abort_multipart_upload)
    expected = StorageAuthError if fault == "refused" else StorageUnavailable
    with pytest.raises(expected, match="abort an upload of 'documents/5/1-kept'"):
        store.abort_upload(upload, active_before=datetime.now(UTC) + timedelta(minutes=1))
    monkeypatch.undo()
    assert upload_id in _mine(store)


def test_parts_that_cannot_be_listed_are_a_storage_error(seaweed: SeaweedServer) -> None:
    store = seaweed.store()
    _begin(seaweed, store, "documents/6/1-x")
    (upload,) = _mine(store).values()
    down = S3Store(endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket=seaweed.bucket, secure=False,
                   region="us-east-1", key_prefix=store.key_prefix)
    with pytest.raises(StorageUnavailable, match="list the parts of an upload of 'documents/6/1-x'"):
        down.abort_upload(upload, active_before=datetime.now(UTC) + timedelta(minutes=1))
    assert upload.upload_id in _mine(store)
