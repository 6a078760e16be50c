"""Unfinished multipart uploads of the S3 store, against the real SeaweedFS: listed under the store's prefix
with their parts' size and latest time, aborted only when idle, paged without loss or loops.

(`tests/documents/test_fsck_s3.py` tries the same through `vault fsck` with an upload really killed
mid-way; these pin the store's own contract, which the storage coverage floor measures.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from minio.datatypes import ListMultipartUploadsResult

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
    names = {client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=f"{store.key_prefix}d/{n}",
                                             headers={}): f"{store.key_prefix}d/{n}"
             for n in range(1003)}
    try:
        listed = [upload.upload_id for upload in store.unfinished_uploads()]
        assert len(listed) == len(names) and set(listed) == set(names)
    finally:  # the bucket is shared by the session's tests: leave none of them behind
        for upload_id, name in names.items():
            client._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=name, upload_id=upload_id)


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
