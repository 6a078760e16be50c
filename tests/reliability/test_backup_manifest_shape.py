"""A backup manifest of the wrong shape is refused with a clear error, never a traceback.

A manifest without a MAC (one made before manifests were authenticated) is restored only with
`--accept-unsigned`, so its shape is whatever the folder says: an entry of `objects` that is no JSON object,
or a `database` that is no object, reached code that read them as objects and crashed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vault.core.errors import ServiceError
from vault.services import backup


def _folder(tmp_path: Path, **changes: object) -> Path:
    dump = tmp_path / backup.SQLITE_DUMP
    dump.write_bytes(b"dump")
    manifest = {"format": backup.FORMAT, "database": {"file": dump.name, "sha256": "0" * 64, "dialect": "sqlite"},
                "objects": [], "objects_copied": True, "audit_head": {}, "keyring": {}, **changes}
    (tmp_path / backup.MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


@pytest.mark.parametrize("database", [["database.sqlite3"], "database.sqlite3", None])
def test_a_database_entry_that_is_no_object_is_a_bad_manifest(tmp_path, database):
    with pytest.raises(ServiceError) as refused:
        backup.read_manifest(_folder(tmp_path, database=database))
    assert refused.value.code == "backup_bad_manifest"
    assert "database" in str(refused.value)


@pytest.mark.parametrize("entry", ["documents/1/v1", 7, ["documents/1/v1"], None])
def test_an_object_entry_that_is_no_object_is_named_not_a_crash(tmp_path, entry):
    """Before: `AttributeError` from the check of the copied objects (`vault restore --accept-unsigned`
    ended in a traceback); now the entry is named as a problem of the backup, which refuses the restore
    before anything is written."""
    folder = _folder(tmp_path, objects=[entry, {"key": "documents/2/v1", "size": 1, "sha256": "0" * 64}])
    manifest = backup.read_manifest(folder)
    problems = backup.check_backup(folder, manifest)
    assert f"manifest entry {entry!r} is not an object" in problems
    assert "object documents/2/v1 is missing" in problems


def test_an_entry_that_is_no_object_is_named_in_a_backup_without_objects_too(tmp_path):
    """A backup without objects (the store's replica holds them) checks its entries against the store:
    the entry that is no object is named by the folder's check and never asked of the store."""
    folder = _folder(tmp_path, objects=["documents/1/v1"], objects_copied=False)
    assert backup.check_backup(folder, backup.read_manifest(folder)) == [
        "the database dump database.sqlite3 differs from the manifest",
        "manifest entry 'documents/1/v1' is not an object"]
