"""`vault fsck` on an S3 store: multipart uploads a killed process left unfinished are reported, and
`--repair` aborts those idle for --min-age-minutes, never one still going. Against the real SeaweedFS."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from storage import LeavesTemporaryFiles, LeavesUnfinishedUploads, LocalStore, ObjectNotFound, S3Store
from tests.documents.conftest import cli_env, events
from vault.cli import cli
from vault.services import integrity

pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parents[2]
PART = 5 * 1024 * 1024  # the S3 minimum part size


def _killed_mid_upload(store: S3Store, seaweed, key: str) -> None:
    """Start `store.put` of a large stream in another process and kill it once two parts have gone up:
    what an upload killed mid-way (OOM, deploy, power) really leaves, with no chance to abort."""
    script = textwrap.dedent(f"""
        import io, os
        from storage import S3Store
        store = S3Store(endpoint={seaweed.endpoint!r}, access_key={seaweed.access_key!r},
                        secret_key={seaweed.secret_key!r}, bucket={seaweed.bucket!r}, secure=False,
                        key_prefix={store.key_prefix!r}, part_size={PART}, parallel_uploads=1)

        class Dying(io.RawIOBase):
            sent = 0
            def readable(self):
                return True
            def readinto(self, buffer):
                if self.sent >= 2 * {PART} + 1:
                    os._exit(9)  # killed: no exception handler, no abort
                size = min(len(buffer), 2 * {PART} + 1 - self.sent)
                buffer[:size] = b"\\x28" * size
                self.sent += size
                return size

        store.put({key!r}, Dying())
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    assert store.exists(key) is False  # nothing published: the upload is invisible to object listings


def _server_uploads(seaweed, prefix: str) -> list[tuple[str, str]]:
    """What the server itself lists, asked from outside the store."""
    listing = seaweed.client()._list_multipart_uploads(bucket_name=seaweed.bucket, prefix=prefix)
    return [(upload.object_name, upload.upload_id) for upload in listing.uploads]


def test_an_upload_killed_midway_is_reported_and_aborted(s3_rt, seaweed):
    """Was: fsck saw nothing (the parts are in no object listing) and they held their space for ever.
    Now it reports the upload (key, upload id, when begun) and --repair aborts it once idle for
    min_age, named in a "storage:repair" record first."""
    store = s3_rt.store
    key = "documents/41/1-0123456789abcdef0123456789abcdef"
    _killed_mid_upload(store, seaweed, key)
    [(name, upload_id)] = _server_uploads(seaweed, store.key_prefix)
    assert name == store.key_prefix + key

    young = integrity.fsck(s3_rt, repair=True)  # default grace: it may be an upload still going
    assert young.ok and young.uploads == [] and young.aborted_uploads == []
    [pending] = young.pending_uploads
    assert (pending.key, pending.upload_id) == (key, upload_id)
    assert events(s3_rt, "storage:repair") == []
    assert _server_uploads(seaweed, store.key_prefix) == [(name, upload_id)]

    found = integrity.fsck(s3_rt, min_age=timedelta(0))
    assert not found.ok and found.unresolved == 1
    [upload] = found.uploads
    assert (upload.key, upload.upload_id, upload.size) == (key, upload_id, 2 * PART)
    assert upload.initiated <= upload.last_activity
    assert _server_uploads(seaweed, store.key_prefix) == [(name, upload_id)]  # reporting removes nothing
    assert json.loads(events(s3_rt, "storage:fsck")[-1].detail)["unfinished_uploads"] == 1

    repaired = integrity.fsck(s3_rt, repair=True, min_age=timedelta(0))
    assert repaired.ok and repaired.aborted_uploads == [upload_id]
    assert _server_uploads(seaweed, store.key_prefix) == []
    [named] = events(s3_rt, "storage:repair")
    assert json.loads(named.detail) == {
        "abort_uploads": [{"key": key, "upload_id": upload_id, "initiated": upload.initiated.isoformat()}],
        "min_age_minutes": 0}
    summary = json.loads(events(s3_rt, "storage:fsck")[-1].detail)
    assert (summary["aborted_uploads"], summary["aborted_upload_ids"]) == (1, [upload_id])
    assert integrity.fsck(s3_rt, repair=True, min_age=timedelta(0)).uploads == []
    assert len(events(s3_rt, "storage:repair")) == 1  # nothing left, nothing named


def test_uploads_outside_the_store_prefix_are_neither_reported_nor_aborted(s3_rt, seaweed):
    """A bucket shared with others (the store's key prefix): their uploads are not ours to abort."""
    other = seaweed.store()
    other_key = other.key_prefix + "documents/1/1-ff"
    other_id = seaweed.client()._create_multipart_upload(bucket_name=seaweed.bucket, object_name=other_key,
                                                         headers={})
    try:
        report = integrity.fsck(s3_rt, repair=True, min_age=timedelta(0))
        assert report.ok and report.uploads == [] and report.pending_uploads == []
        assert _server_uploads(seaweed, other.key_prefix) == [(other_key, other_id)]
    finally:
        seaweed.client()._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=other_key,
                                                 upload_id=other_id)


def test_an_upload_still_sending_parts_is_not_aborted(s3_store, seaweed):
    """Begun long ago is not idle: the store lists the parts again just before aborting, and an upload
    that sent one since `active_before` is left alone, however old its start."""
    client = seaweed.client()
    name = s3_store.key_prefix + "documents/7/1-aa"
    upload_id = client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=name, headers={})
    [listed] = s3_store.unfinished_uploads()
    assert (listed.size, listed.last_activity) == (0, listed.initiated)
    time.sleep(1.1)  # the server keeps times to the second
    client._upload_part(bucket_name=seaweed.bucket, object_name=name, data=b"\x28" * 1000, headers=None,
                        upload_id=upload_id, part_number=1)

    # As fsck would with a grace period that the upload's start is past but its last part is not.
    assert s3_store.abort_upload(listed, active_before=listed.initiated + timedelta(seconds=1)) is False
    [still] = s3_store.unfinished_uploads()
    assert (still.upload_id, still.size) == (upload_id, 1000) and still.last_activity > listed.initiated

    assert s3_store.abort_upload(still, active_before=still.last_activity + timedelta(seconds=1)) is True
    assert list(s3_store.unfinished_uploads()) == []
    # Gone meanwhile (here: by the line above): nothing to abort, and no error.
    assert s3_store.abort_upload(still, active_before=still.last_activity + timedelta(seconds=1)) is False


def test_fsck_command_names_the_unfinished_upload(s3_rt, seaweed):
    """The command's report, with the key, upload id and start time (its store kept to this test's folder
    of the shared bucket by `VAULT_S3_PREFIX`; without it, the key would not be vault's and the upload
    would be reported as not ours)."""
    key = "documents/42/1-0123456789abcdef0123456789abcdef"
    _killed_mid_upload(s3_rt.store, seaweed, key)
    [(_name, upload_id)] = _server_uploads(seaweed, s3_rt.store.key_prefix)
    env = _s3_env(s3_rt, seaweed, VAULT_S3_PREFIX=s3_rt.store.key_prefix)
    try:
        young = CliRunner().invoke(cli, ["fsck"], env=env, catch_exceptions=False)
        assert f"PENDING   {key}: upload {upload_id} begun " in young.output
        assert "active within 15 min (an upload in progress?); left alone" in young.output

        old = CliRunner().invoke(cli, ["fsck", "--min-age-minutes", "0"], env=env, catch_exceptions=False)
        assert old.exit_code == 1
        assert f"UPLOAD    {key} (upload {upload_id}, begun 20" in old.output
        assert f"{2 * PART} bytes in parts, left by an interrupted upload): unfinished" in old.output
        assert "run `vault fsck --repair` to abort the unfinished uploads" in old.output
    finally:
        for upload in s3_rt.store.unfinished_uploads():  # a shared bucket: leave nothing behind
            s3_rt.store.abort_upload(upload, upload.last_activity + timedelta(seconds=1))


def _s3_env(rt, seaweed, **extra: str) -> dict[str, str]:
    return {**cli_env(rt), "VAULT_STORAGE": "s3", "VAULT_S3_ENDPOINT": seaweed.endpoint,
            "VAULT_S3_ACCESS_KEY": seaweed.access_key, "VAULT_S3_SECRET_KEY": seaweed.secret_key,
            "VAULT_S3_BUCKET": seaweed.bucket, "VAULT_S3_SECURE": "false", **extra}


def test_fsck_repair_with_the_key_prefix_leaves_another_applications_idle_upload(s3_rt, seaweed):
    """Was: the command had no setting for the store's key prefix, so on a bucket shared with another
    application `vault fsck --repair` listed the whole bucket and aborted the other's idle uploads too.
    Now `VAULT_S3_PREFIX` gives the command's store (as the app's) its folder: only vault's upload is
    reported and aborted; another application's, outside the folder, is not even seen, whatever its key."""
    store = s3_rt.store
    key = "documents/43/1-0123456789abcdef0123456789abcdef"
    _killed_mid_upload(store, seaweed, key)
    client = seaweed.client()
    # Another application's upload in the same bucket, idle, with a key that even looks like vault's.
    foreign_name = f"other-{uuid.uuid4().hex}/{key}"
    foreign_id = client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=foreign_name, headers={})
    client._upload_part(bucket_name=seaweed.bucket, object_name=foreign_name, data=b"theirs", headers=None,
                        upload_id=foreign_id, part_number=1)
    env = _s3_env(s3_rt, seaweed, VAULT_S3_PREFIX=store.key_prefix)
    try:
        done = CliRunner().invoke(cli, ["fsck", "--repair", "--min-age-minutes", "0"], env=env,
                                  catch_exceptions=False)
        assert done.exit_code == 0, done.output
        assert f"under {store.key_prefix!r}" in done.output
        assert f"UPLOAD    {key} (upload " in done.output and "): aborted" in done.output
        assert "aborted 1 unfinished upload(s)" in done.output and foreign_name not in done.output
        assert _server_uploads(seaweed, store.key_prefix) == []
        assert _server_uploads(seaweed, foreign_name) == [(foreign_name, foreign_id)]
        [named] = events(s3_rt, "storage:repair")
        assert [upload["key"] for upload in json.loads(named.detail)["abort_uploads"]] == [key]
    finally:
        client._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=foreign_name, upload_id=foreign_id)


def test_fsck_repair_without_a_key_prefix_aborts_no_upload_whose_key_is_not_vaults(s3_rt, seaweed):
    """Was: with no key prefix (the only way the command could run) `vault fsck --repair` aborted every idle
    upload in the bucket, another application's included. Now only an upload whose key has the shape vault
    gives its objects is vault's; any other is reported as not ours, never aborted, and is no problem of
    vault's (the exit status stays 0), with a hint to set `VAULT_S3_PREFIX`."""
    whole_bucket = seaweed.store(key_prefix="")
    key = f"documents/{uuid.uuid4().int % 10**9}/1-{uuid.uuid4().hex}"
    _killed_mid_upload(whole_bucket, seaweed, key)
    [(_, vault_id)] = _server_uploads(seaweed, key)
    client = seaweed.client()
    theirs = [f"reports-{uuid.uuid4().hex}/2026/q4.csv", f"documents-{uuid.uuid4().hex}/1/1-ff",
              f"{key}.bak"]  # near misses of vault's shape are not vault's either
    foreign = {}
    for name in theirs:
        foreign[name] = client._create_multipart_upload(bucket_name=seaweed.bucket, object_name=name, headers={})
        client._upload_part(bucket_name=seaweed.bucket, object_name=name, data=b"theirs", headers=None,
                            upload_id=foreign[name], part_number=1)
    try:
        done = CliRunner().invoke(cli, ["fsck", "--repair", "--min-age-minutes", "0"],
                                  env=_s3_env(s3_rt, seaweed), catch_exceptions=False)
        assert done.exit_code == 0, done.output
        assert f"UPLOAD    {key} (upload {vault_id}," in done.output and "aborted 1 unfinished upload(s)" in done.output
        assert _server_uploads(seaweed, key) == [(key + ".bak", foreign[key + ".bak"])]  # vault's went
        for name, upload_id in foreign.items():
            assert _server_uploads(seaweed, name) == [(name, upload_id)]
            assert f"NOT OURS  {name}: upload {upload_id} begun " in done.output
        assert "set VAULT_S3_PREFIX to keep vault to a folder" in done.output
        [named] = events(s3_rt, "storage:repair")
        assert [upload["key"] for upload in json.loads(named.detail)["abort_uploads"]] == [key]
        assert json.loads(events(s3_rt, "storage:fsck")[-1].detail)["foreign_uploads"] >= len(theirs)
    finally:
        for name, upload_id in foreign.items():
            client._abort_multipart_upload(bucket_name=seaweed.bucket, object_name=name, upload_id=upload_id)


def test_which_stores_leave_what():
    assert issubclass(S3Store, LeavesUnfinishedUploads) and not issubclass(S3Store, LeavesTemporaryFiles)
    assert issubclass(LocalStore, LeavesTemporaryFiles) and not issubclass(LocalStore, LeavesUnfinishedUploads)


def test_fsck_repair_without_a_key_prefix_removes_no_object_whose_key_is_not_vaults(s3_rt, seaweed):
    """Was: with no key prefix, `vault fsck --repair` took every object under the bucket's `documents/`
    that no row names for an orphan and deleted it, another application's included. Now only an object
    whose key has vault's shape is an orphan; any other is reported as not ours, never removed, and is no
    problem (exit 0), with the hint to set `VAULT_S3_PREFIX`; vault's own orphan is still removed."""
    whole_bucket = seaweed.store(key_prefix="")
    tag = uuid.uuid4().hex
    orphan = f"documents/{uuid.uuid4().int % 10**9}/1-{tag}"
    theirs = [f"documents/readme-{tag}.txt", f"reports-{tag}/q4.csv", f"{orphan}.bak",
              f"documents/{tag}/1-report.pdf"]
    for key in [orphan, *theirs]:
        whole_bucket.put(key, io.BytesIO(b"bytes of " + key.encode()))
    try:
        done = CliRunner().invoke(cli, ["fsck", "--repair", "--min-age-minutes", "0"],
                                  env=_s3_env(s3_rt, seaweed), catch_exceptions=False)
        assert done.exit_code == 0, done.output
        assert f"ORPHAN    {orphan} (" in done.output and "removed 1 orphan object(s)" in done.output
        assert not whole_bucket.exists(orphan)
        for key in theirs:
            with whole_bucket.open(key) as body:
                assert body.read() == b"bytes of " + key.encode()
            if key.startswith("documents/"):
                assert f"ORPHAN    {key}" not in done.output
        assert f"NOT OURS  {theirs[0]} (" in done.output and f"NOT OURS  {theirs[2]} (" in done.output
        assert "set VAULT_S3_PREFIX to keep vault to a folder" in done.output
        removed = [key for event in events(s3_rt, "storage:repair") for key in json.loads(event.detail)["remove"]]
        assert removed == [orphan]
        assert json.loads(events(s3_rt, "storage:fsck")[-1].detail)["foreign_objects"] >= 3
    finally:
        for key in [orphan, *theirs]:
            with contextlib.suppress(ObjectNotFound):
                whole_bucket.delete(key)
