"""Unfinished multipart uploads of the S3 store, against the real SeaweedFS: listed under the store's prefix
with their parts' size and latest time, aborted only when idle, paged without loss or loops.

(`tests/documents/test_fsck_s3.py` tries the same through `vault fsck` with an upload really killed
mid-way; these pin the store's own contract, which the storage coverage floor measures.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
    """One upload and one part a page: every upload listed once, every part's bytes counted, and the
    listing ends (a server that pages wrongly may shorten it, never loop it)."""
    store = seaweed.store()
    ids = {_begin(seaweed, store, f"documents/{n}/1-p", (b"a" * 10, b"b" * 5)) for n in range(3)}
    monkeypatch.setattr(s3_module, "_LISTING_PAGE", 1)
    listed = list(store.unfinished_uploads())
    assert {upload.upload_id for upload in listed} <= ids and len(listed) == len({u.upload_id for u in listed})
    assert listed and all(upload.size == 15 for upload in listed)


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
