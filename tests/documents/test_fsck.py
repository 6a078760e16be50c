"""`vault fsck`: the store and the database checked against each other, and every version decrypted."""

from __future__ import annotations

import io
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from storage import LeavesTemporaryFiles, LocalStore, S3Store
from storage import local as local_module
from tests.documents.conftest import cli_env, events, pdf_bytes, read_object, stored_keys, text_bytes
from vault.audit import checkpoints, export
from vault.cli import cli
from vault.models import Document, DocumentVersion
from vault.services import documents, integrity, renditions


def _fsck(rt, *args):
    return CliRunner().invoke(cli, ["fsck", *args], env=cli_env(rt), catch_exceptions=False)


def _version_of(rt, document_id):
    with rt.db.session() as session:
        return session.get(Document, document_id).versions[0]


def test_a_healthy_vault_passes(rt, company):
    company.upload(data=text_bytes(1_500_000), name="big.txt")
    company.upload(data=pdf_bytes())
    result = _fsck(rt)
    assert result.exit_code == 0, result.output
    assert "checked 2 version(s), 2 object(s)" in result.output
    assert "ok: the store and the database agree" in result.output
    [event] = events(rt, "storage:fsck")
    assert event.outcome == "allowed"
    assert json.loads(event.detail)["versions_checked"] == 2


def test_crash_between_store_and_database_is_found_and_repaired(rt, company):
    kept = company.upload(data=pdf_bytes(b"kept"))
    # A crash after the object was written and before the row committed: simulated by writing the object
    # as the upload does, with no row (the process "died" before its transaction).
    orphan = f"documents/{kept + 1}/1-0123456789abcdef0123456789abcdef"
    rt.store.put(orphan, io.BytesIO(b"\x28" + b"ciphertext" * 100))

    fresh = _fsck(rt)  # with the default grace period, a just-written object may be an upload in progress
    assert fresh.exit_code == 0, fresh.output
    assert f"PENDING   {orphan}" in fresh.output

    found = _fsck(rt, "--min-age-minutes", "0")
    assert found.exit_code == 1
    assert f"ORPHAN    {orphan} (1001 bytes, no version refers to it): orphan" in found.output
    assert "run `vault fsck --repair`" in found.output
    assert orphan in stored_keys(rt)

    repaired = _fsck(rt, "--repair", "--min-age-minutes", "0")
    assert repaired.exit_code == 0, repaired.output
    assert "removed 1 orphan object(s)" in repaired.output
    assert stored_keys(rt) == [_version_of(rt, kept).object_key]  # only the orphan went
    assert _fsck(rt, "--min-age-minutes", "0").exit_code == 0
    outcomes = [(e.outcome, json.loads(e.detail)["removed"]) for e in events(rt, "storage:fsck")]
    assert outcomes == [("allowed", 0), ("failed", 0), ("allowed", 1), ("allowed", 0)]
    assert json.loads(events(rt, "storage:fsck")[2].detail)["removed_keys"] == [orphan]


def test_missing_object_is_found_and_not_repairable(rt, company):
    document_id = company.upload()
    version = _version_of(rt, document_id)
    rt.store.delete(version.object_key)
    result = _fsck(rt, "--repair", "--min-age-minutes", "0")
    assert result.exit_code == 1
    assert f"MISSING   version {version.id}: object {version.object_key} is not in the store" in result.output
    assert "1 problem(s) found" in result.output
    [event] = events(rt, "storage:fsck")
    assert (event.outcome, event.reason_code) == ("failed", "integrity_problems")


def test_tampered_ciphertext_and_wrong_digest_are_found(rt, company):
    tampered = _version_of(rt, company.upload(data=text_bytes(1_200_000), name="a.txt"))
    altered = _version_of(rt, company.upload(data=pdf_bytes(), name="b.pdf"))
    healthy = _version_of(rt, company.upload(data=pdf_bytes(), name="c.pdf"))
    path = rt.store.root / tampered.object_key
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x80  # in the last segment: the first ones still decrypt
    path.write_bytes(bytes(raw))
    with rt.db.session() as session:
        session.get(DocumentVersion, altered.id).sha256 = "0" * 64

    report = integrity.fsck(rt, min_age=timedelta(0))
    assert sorted((p.version_id, p.kind) for p in report.corrupt) == sorted(
        [(tampered.id, "undecryptable"), (altered.id, "sha256_mismatch")])
    assert healthy.id not in {p.version_id for p in report.corrupt}
    assert not report.missing and not report.orphans

    result = _fsck(rt, "--repair")
    assert result.exit_code == 1
    assert f"CORRUPT   version {tampered.id}: {tampered.object_key}: undecryptable" in result.output
    assert f"CORRUPT   version {altered.id}: {altered.object_key}: sha256_mismatch" in result.output
    assert len(stored_keys(rt)) == 3  # repair never touches a referenced object


def _orphans(rt, count):
    keys = [f"documents/{9000 + n}/1-{n:032x}" for n in range(count)]
    for key in keys:
        rt.store.put(key, io.BytesIO(b"\x28" + b"ciphertext" * 10))
    return keys


def test_every_object_the_repair_removes_is_named_in_the_log(rt, company):
    """Was: the run's one record named the first 100 removed keys; 150 orphans removed left 50 deletions
    nowhere in the log. Now each key is named ("storage:repair", 100 a record) before it is removed."""
    orphans = _orphans(rt, 150)
    repaired = _fsck(rt, "--repair", "--min-age-minutes", "0")
    assert repaired.exit_code == 0, repaired.output
    assert "removed 150 orphan object(s)" in repaired.output and stored_keys(rt) == []
    named = [key for event in events(rt, "storage:repair") for key in json.loads(event.detail)["remove"]]
    assert sorted(named) == sorted(orphans)
    assert [len(json.loads(e.detail)["remove"]) for e in events(rt, "storage:repair")] == [100, 50]
    [summary] = events(rt, "storage:fsck")
    assert (summary.outcome, json.loads(summary.detail)["removed"]) == ("allowed", 150)
    # Nothing to remove, nothing named.
    assert _fsck(rt, "--repair", "--min-age-minutes", "0").exit_code == 0
    assert len(events(rt, "storage:repair")) == 2


def test_a_repair_whose_summary_cannot_be_written_has_named_what_it_removed(rt, company, monkeypatch):
    """A crash after the deletions (injected: the summary record fails, as a database gone at that moment
    would). Was: the objects were gone and no record said so. Now their record committed first."""
    [orphan] = _orphans(rt, 1)
    record = rt.audit.record

    def failing(session, *, action, **kwargs):
        if str(action) == "storage:fsck":
            raise RuntimeError("the database went away")
        return record(session, action=action, **kwargs)

    monkeypatch.setattr(rt.audit, "record", failing)
    with pytest.raises(RuntimeError, match="went away"):
        integrity.fsck(rt, repair=True, min_age=timedelta(0))
    monkeypatch.undo()
    assert orphan not in stored_keys(rt)
    [named] = events(rt, "storage:repair")
    assert json.loads(named.detail)["remove"] == [orphan]


def test_a_young_orphan_is_neither_removed_nor_named(rt, company):
    [young] = _orphans(rt, 1)
    result = _fsck(rt, "--repair")
    assert result.exit_code == 0, result.output
    assert young in stored_keys(rt) and events(rt, "storage:repair") == []


def _crash_leftover(rt, folder: str, age: timedelta) -> Path:
    """What an upload killed mid-write leaves in the local store: a temporary file no write holds."""
    path = rt.store.root / folder / f"{local_module.TEMP_PREFIX}crashed"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x28" + b"half" * 25)
    moment = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (moment, moment))
    return path


def test_temporary_files_of_crashed_writes_are_found_and_repaired(rt, company):
    """Was: `.vault-tmp-*` files of writes killed mid-copy were never reported nor removed. Now fsck reports
    them and --repair removes those older than --min-age-minutes, each named in a "storage:repair" record
    committed before it goes, as orphans are."""
    kept = company.upload(data=pdf_bytes(b"kept"))
    old = _crash_leftover(rt, f"documents/{kept}", timedelta(hours=1))
    young = _crash_leftover(rt, "documents/99", timedelta(minutes=1))
    old_name, young_name = (str(p.relative_to(rt.store.root.resolve())) for p in (old, young))

    found = _fsck(rt)
    assert found.exit_code == 1, found.output
    assert f"TEMPORARY {old_name} (101 bytes, left by an interrupted write): leftover" in found.output
    assert f"PENDING   {young_name}: a temporary file younger than 15 min" in found.output
    assert "run `vault fsck --repair` to remove the temporary files" in found.output
    assert old.exists() and young.exists() and events(rt, "storage:repair") == []

    repaired = _fsck(rt, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert f"TEMPORARY {old_name} (101 bytes, left by an interrupted write): removed" in repaired.output
    assert "removed 1 temporary file(s)" in repaired.output
    assert not old.exists() and young.exists()  # the young one may be a write still going: left alone
    assert stored_keys(rt) == [_version_of(rt, kept).object_key]
    [named] = events(rt, "storage:repair")
    assert json.loads(named.detail) == {"remove_temporary": [old_name], "min_age_minutes": 15}
    summary = json.loads(events(rt, "storage:fsck")[-1].detail)
    assert (summary["removed_leftovers"], summary["removed_temporary"]) == (1, [old_name])
    assert summary["pending_leftovers"] == 1


def test_a_write_in_progress_survives_a_repair_with_no_grace(rt, company):
    """--min-age-minutes 0 takes every temporary file for old: the write's lock keeps one in progress."""
    go, started = threading.Event(), threading.Event()

    def stalled():
        yield b"\x28" + b"x" * 99
        started.set()
        assert go.wait(30)

    class Stream(io.RawIOBase):
        def __init__(self):
            self.parts = stalled()

        def readable(self):
            return True

        def readinto(self, buffer):
            part = next(self.parts, b"")
            buffer[:len(part)] = part
            return len(part)

    key = "documents/77/1-0123456789abcdef0123456789abcdef"
    writer = threading.Thread(target=rt.store.put, args=(key, Stream()))
    writer.start()
    try:
        assert started.wait(30)
        result = _fsck(rt, "--repair", "--min-age-minutes", "0")
        assert result.exit_code == 0, result.output
        assert "PENDING   documents/77/.vault-tmp-" in result.output and "still held by its write" in result.output
        assert events(rt, "storage:repair") == []
    finally:
        go.set()
        writer.join(30)
    assert key in stored_keys(rt)  # the write finished whole; now an orphan for the next run
    assert not list(rt.store.leftovers())


def test_only_the_local_store_leaves_temporary_files():
    assert issubclass(LocalStore, LeavesTemporaryFiles) and not issubclass(S3Store, LeavesTemporaryFiles)


def test_vaults_key_shape_is_the_shape_of_every_key_vault_gives_an_object():
    """fsck aborts an unfinished upload or removes an orphan, and a backup or a restore takes an object,
    only under a key of this shape: it must take in every key vault makes, and nothing else."""
    version = documents.object_key(12, 3)
    ours = [version, renditions.page_key(version, 1), renditions.page_key(version, 140),
            checkpoints.object_key(7), export.manifest_key(123456)]
    assert all(integrity.is_vault_key(key) for key in ours)
    theirs = ["documents/12/3-report.pdf", f"{version}.bak", f"backup/{version}", "documents/x/3-" + "a" * 32,
              f"{version}-pages/", f"{version}-pages/1/2", "audit/checkpoints/7.json", "audit/checkpoints/"
              + "0" * 20 + ".json.tmp", "audit/exports/" + "1" * 20 + ".json", "reports/q4.csv", "",
              version.upper(), f"{version}\n"]
    assert not any(integrity.is_vault_key(key) for key in theirs)


def _foreign(rt) -> list[str]:
    """Objects another application keeps in the same store: under `documents/` and beside it, and one
    whose key is vault's shape but for a suffix."""
    almost = f"documents/9100/1-{'ab' * 16}.bak"
    keys = ["documents/readme.txt", "documents/12/3-report.pdf", almost, "reports/q4.csv"]
    for key in keys:
        rt.store.put(key, io.BytesIO(b"theirs: " + key.encode()))
    return keys


def test_repair_removes_vaults_orphan_and_leaves_objects_whose_keys_are_not_vaults(rt, company):
    """Was: every object under `documents/` that no row names was an orphan, and `--repair` deleted
    another application's `documents/readme.txt` along with vault's own (and counted it as a problem).
    Now an object whose key is not of the shape vault gives its objects is reported as not ours, left alone
    and no problem (exit 0); vault's own orphan is still named and removed."""
    kept = company.upload(data=pdf_bytes(b"kept"))
    [orphan] = _orphans(rt, 1)
    theirs = _foreign(rt)

    found = _fsck(rt, "--min-age-minutes", "0")
    assert found.exit_code == 1, found.output  # vault's orphan is a problem, the others are not
    assert "1 problem(s) found" in found.output
    for key in theirs[:3]:  # the fourth lies outside `documents/`: fsck does not even list it
        assert f"NOT OURS  {key} (" in found.output and "left alone" in found.output
        assert f"ORPHAN    {key}" not in found.output
    assert "set VAULT_S3_PREFIX" not in found.output  # a local folder has no such setting

    repaired = _fsck(rt, "--repair", "--min-age-minutes", "0")
    assert repaired.exit_code == 0, repaired.output
    assert f"ORPHAN    {orphan} (" in repaired.output and "removed 1 orphan object(s)" in repaired.output
    assert "3 object(s) not vault's left alone" in repaired.output
    assert sorted(stored_keys(rt)) == sorted([_version_of(rt, kept).object_key, *theirs[:3]])
    for key in theirs:
        assert read_object(rt, key) == b"theirs: " + key.encode()
    [named] = events(rt, "storage:repair")
    assert json.loads(named.detail)["remove"] == [orphan]
    summary = events(rt, "storage:fsck")[-1]
    assert summary.outcome == "allowed"
    assert (json.loads(summary.detail)["foreign_objects"], json.loads(summary.detail)["removed"]) == (3, 1)
    # Only foreign objects left: clean, and nothing named for removal.
    assert _fsck(rt, "--repair", "--min-age-minutes", "0").exit_code == 0
    assert len(events(rt, "storage:repair")) == 1


def test_many_objects_not_vaults_are_counted_and_the_first_few_named(rt, company):
    """A shared folder may hold thousands of another application's files under `documents/`: the report
    names the first ones and counts the rest, so vault's own findings are not buried."""
    theirs = [f"documents/shared/{n:03d}.txt" for n in range(integrity.FOREIGN_SHOWN + 5)]
    for key in theirs:
        rt.store.put(key, io.BytesIO(b"theirs"))
    report = integrity.fsck(rt, repair=True, min_age=timedelta(0))
    assert report.ok and report.orphans == [] and report.removed == []
    assert report.foreign_objects == len(theirs)
    assert [p.key for p in report.foreign_shown] == theirs[:integrity.FOREIGN_SHOWN]
    result = _fsck(rt, "--repair", "--min-age-minutes", "0")
    assert result.exit_code == 0, result.output
    assert f"NOT OURS  {theirs[integrity.FOREIGN_SHOWN - 1]} (" in result.output
    assert f"NOT OURS  {theirs[integrity.FOREIGN_SHOWN]} " not in result.output
    assert f"and 5 more; {len(theirs)} object(s) not vault's left alone" in result.output
    assert sorted(stored_keys(rt)) == theirs
