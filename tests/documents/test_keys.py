"""`vault keys ...`: rotation re-wraps data keys only, can be resumed, and a key is dropped only when unused."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from crypto import Keyring, KeyringError
from tests.conftest import make_runtime
from tests.documents.conftest import cli_env, events, pdf_bytes, read_object, stored_keys, text_bytes
from vault.cli import cli
from vault.core.audit_actions import AuditAction
from vault.core.errors import ServiceError
from vault.db import key_lock
from vault.db.engine import Database
from vault.models import DocumentVersion
from vault.services import documents, keys


@pytest.fixture
def keyring_path(tmp_path):
    """A keyring of this test's own: rotating the shared one would change every other test's keys."""
    path = tmp_path / "own-keyring.json"
    Keyring.create(path)
    return path


def _vault(rt, *args):
    return CliRunner().invoke(cli, list(args), env=cli_env(rt), catch_exceptions=False)


def _versions(rt):
    with rt.db.session() as session:
        return list(session.scalars(select(DocumentVersion).order_by(DocumentVersion.id)))


def _upload_three(company):
    contents = [text_bytes(1_300_000, b"one"), pdf_bytes(b"two"), text_bytes(5000, b"three")]
    for i, data in enumerate(contents):
        company.upload(data=data, name=f"f{i}.txt" if i != 1 else "f1.pdf", title=f"File {i}")
    return contents


def test_rotation_rewraps_every_data_key_and_leaves_objects_alone(rt, company, keyring_path):
    contents = _upload_three(company)
    before = {key: read_object(rt, key) for key in stored_keys(rt)}
    wrapped_before = {v.id: v.wrapped_dek for v in _versions(rt)}

    refused = _vault(rt, "keys", "drop", "k0001")
    assert refused.exit_code == 1
    assert "k0001 is the active key" in refused.output

    result = _vault(rt, "keys", "rotate", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "new active master key k0002; k0001 is retired" in result.output
    assert "re-wrapped 3 data key(s) in 2 batch(es); objects untouched" in result.output

    rt.keyring = Keyring.load(keyring_path)  # what a restarted server would load
    assert rt.keyring.active_key_id == "k0002"
    versions = _versions(rt)
    assert {v.key_id for v in versions} == {"k0002"}
    assert all(wrapped_before[v.id] != v.wrapped_dek for v in versions)
    assert {key: read_object(rt, key) for key in stored_keys(rt)} == before  # byte-identical
    for version, data in zip(versions, contents, strict=True):
        with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
            assert b"".join(chunks) == data

    listing = _vault(rt, "keys", "list")
    assert listing.exit_code == 0
    lines = {line.split()[0]: line.split() for line in listing.output.splitlines()[1:]}
    assert (lines["k0001"][1], lines["k0001"][-1]) == ("retired", "0")
    assert (lines["k0002"][1], lines["k0002"][-1]) == ("active", "3")

    dropped = _vault(rt, "keys", "drop", "k0001")
    assert dropped.exit_code == 0, dropped.output
    rt.keyring = Keyring.load(keyring_path)
    assert rt.keyring.key_ids() == ["k0002"]
    for version, data in zip(_versions(rt), contents, strict=True):
        with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
            assert b"".join(chunks) == data
    assert _vault(rt, "fsck").exit_code == 0

    [rotation] = events(rt, "key:rotate")
    assert json.loads(rotation.detail) == {"active_key_id": "k0002", "previous_key_id": "k0001"}
    [rewrapped] = events(rt, "key:rewrap")
    assert rewrapped.seq > rotation.seq
    assert json.loads(rewrapped.detail) == {"active_key_id": "k0002", "previous_key_id": "k0001",
                                            "rewrapped": 3, "batches": 2, "records": 0}
    assert [json.loads(e.detail)["key_id"] for e in events(rt, "key:drop")] == ["k0001"]


def test_an_interrupted_rotation_is_resumed_and_blocks_the_drop_until_then(rt, company, keyring_path):
    contents = _upload_three(company)

    def interrupt(_count):
        raise KeyboardInterrupt  # the operator pressed Ctrl+C after the first batch committed

    with pytest.raises(KeyboardInterrupt):
        keys.rotate(rt, batch_size=2, progress=interrupt)
    assert sorted(v.key_id for v in _versions(rt)) == ["k0001", "k0002", "k0002"]
    assert keys.pending(rt) == 1
    # The new master key is in use: its record committed before the keyring changed (was: none until
    # every data key had moved, so an interrupted rotation left a new key with no record at all).
    [rotation] = events(rt, "key:rotate")
    assert (rotation.outcome, json.loads(rotation.detail)) == (
        "allowed", {"active_key_id": "k0002", "previous_key_id": "k0001"})
    assert events(rt, "key:rewrap") == []
    # The file saved before any data key moved: a new process can read every version right now.
    rt.keyring = Keyring.load(keyring_path)
    for version, data in zip(_versions(rt), contents, strict=True):
        with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
            assert b"".join(chunks) == data

    refused = _vault(rt, "keys", "drop", "k0001")
    assert refused.exit_code == 1
    assert "master key k0001 still wraps 1 data key(s)" in refused.output
    assert events(rt, "key:drop") == []

    resumed = _vault(rt, "keys", "rewrap")
    assert resumed.exit_code == 0, resumed.output
    assert "re-wrapped 1 data key(s) in 1 batch(es)" in resumed.output
    [finished] = events(rt, "key:rewrap")
    assert json.loads(finished.detail)["rewrapped"] == 1
    assert _vault(rt, "keys", "drop", "k0001").exit_code == 0
    rt.keyring = Keyring.load(keyring_path)
    assert rt.keyring.key_ids() == ["k0002"]
    for version, data in zip(_versions(rt), contents, strict=True):
        with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
            assert b"".join(chunks) == data


def test_unknown_key_cannot_be_dropped(rt, company):
    result = _vault(rt, "keys", "drop", "k0042")
    assert result.exit_code == 1
    assert "unknown master key id 'k0042'" in result.output


def test_export_writes_a_private_copy_once_and_records_it(rt, tmp_path):
    out = tmp_path / "keyring-export.json"
    result = _vault(rt, "keys", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    copy = Keyring.load(out)
    assert copy.key_ids() == rt.keyring.key_ids() and copy.audit_key == rt.keyring.audit_key
    [event] = events(rt, "key:export")
    assert json.loads(event.detail)["key_ids"] == rt.keyring.key_ids()

    # An existing file is never overwritten, and a refused export records nothing.
    out.write_text("something else")
    again = _vault(rt, "keys", "export", "--out", str(out))
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert out.read_text() == "something else"
    assert len(events(rt, "key:export")) == 1
    missing_folder = _vault(rt, "keys", "export", "--out", str(tmp_path / "no-such-folder" / "k.json"))
    assert missing_folder.exit_code == 1 and "cannot be written" in missing_folder.output
    assert len(events(rt, "key:export")) == 1


def test_a_keyring_that_cannot_be_saved_changes_nothing_and_says_so(rt, company, keyring_path, monkeypatch):
    """The keyring file refusing the write (injected: a full or read-only disk) leaves the old key active,
    every data key where it was, and the rotation's record followed by its failure."""
    _upload_three(company)

    def refuse() -> None:
        raise KeyringError("cannot write keyring file: No space left on device")

    monkeypatch.setattr(rt.keyring, "save", refuse)
    with pytest.raises(ServiceError) as refused:
        keys.rotate(rt)
    monkeypatch.undo()
    assert refused.value.code == "keyring_unwritable"
    assert rt.keyring.active_key_id == "k0001" and Keyring.load(keyring_path).key_ids() == ["k0001"]
    assert {v.key_id for v in _versions(rt)} == {"k0001"}
    assert [(e.outcome, e.reason_code) for e in events(rt, "key:rotate")] == [
        ("allowed", None), ("failed", "keyring_unwritable")]
    assert events(rt, "key:rewrap") == []


class _Operator:
    """`vault keys rotate` then `vault keys drop k0001`, run by an operator's own runtime in a thread while
    an upload is between the wrapping of its data key and its commit."""

    def __init__(self, rt) -> None:
        self.runtime = make_runtime(rt.settings.data_dir, rt.settings.database, rt.settings.keyring_path)
        self.drop_error: ServiceError | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            keys.rotate(self.runtime)
            try:
                keys.drop(self.runtime, "k0001")
            except ServiceError as exc:
                self.drop_error = exc
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = exc

    def start_and_wait(self, seconds: float) -> bool:
        """Start, wait up to `seconds`; whether the operator finished in that time."""
        self.thread.start()
        self.thread.join(seconds)
        return not self.thread.is_alive()

    def finish(self) -> None:
        self.thread.join(120)
        assert not self.thread.is_alive()
        self.runtime.close()
        if self.failure is not None:
            raise self.failure


@pytest.mark.parametrize("placement", ["after_wrap", "at_the_upload_record"])
def test_a_key_dropped_during_an_upload_never_leaves_a_version_it_cannot_read(rt, company, keyring_path,
                                                                           monkeypatch, placement):
    """The upload wraps its data key under k0001; before it commits, k0002 is made active, everything
    committed is re-wrapped and k0001 is dropped. Before, on PostgreSQL, the drop's count missed the
    uncommitted row and the version was stored under a key gone for ever. Now either the upload finds
    its key no longer active at its commit and wraps the data key again (the drop ended first), or the
    drop waits for the upload's commit and counts it (the upload had already looked)."""
    postgres = rt.db.dialect == "postgresql"
    operator = _Operator(rt)
    finished: list[bool] = []

    def place_the_drop() -> None:
        if not finished:
            finished.append(operator.start_and_wait(30 if postgres and placement == "after_wrap" else 3))

    real_wrap, real_record = rt.keyring.wrap_current, rt.audit.record

    def wrap_then_drop(dek, context):
        wrapped = real_wrap(dek, context)
        if placement == "after_wrap":
            place_the_drop()
        return wrapped

    def record_then_drop(session, **fields):
        if placement == "at_the_upload_record" and fields.get("action") == AuditAction.DOCUMENT_UPLOAD:
            place_the_drop()
        return real_record(session, **fields)

    monkeypatch.setattr(rt.keyring, "wrap_current", wrap_then_drop)
    monkeypatch.setattr(rt.audit, "record", record_then_drop)
    data = text_bytes(200_000, b"during-rotation")
    document_id = company.upload(data=data, name="during.txt", title="During the rotation")
    monkeypatch.undo()
    operator.finish()
    assert finished == [postgres and placement == "after_wrap"]  # SQLite: the operator waits its turn

    rt.keyring = Keyring.load(keyring_path)  # what a restarted server would load
    with rt.db.session() as session:
        version = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id)).one()
        session.expunge(version)
    if postgres and placement == "at_the_upload_record":
        # The drop waited for the upload's commit, counted its row and refused; a re-wrap then lets it go.
        assert operator.drop_error is not None and operator.drop_error.code == "key_in_use"
        assert version.key_id == "k0001" and rt.keyring.key_ids() == ["k0001", "k0002"]
        with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
            assert b"".join(chunks) == data
        keys.rewrap(rt)
        keys.drop(rt, "k0001")
        rt.keyring = Keyring.load(keyring_path)
        with rt.db.session() as session:
            version = session.get(DocumentVersion, version.id)
            session.expunge(version)
    else:
        # The drop went through (on PostgreSQL during the upload; on SQLite after its commit).
        assert operator.drop_error is None
    assert rt.keyring.key_ids() == ["k0002"] and version.key_id == "k0002"
    assert set(keys.usage(rt)) <= set(rt.keyring.key_ids())
    with documents.plaintext_chunks(rt, version, documents.ReadGrant.for_check(version)) as chunks:
        assert b"".join(chunks) == data


def test_a_drop_kept_waiting_by_uploads_is_refused_in_seconds_and_recorded(rt, company, keyring_path):
    """An upload about to commit holds the key lock shared; a drop waits for it a few seconds at most,
    then is refused with a clear message and a failed "key:drop", nothing dropped. Before, the drop
    waited with no bound (for as long as the lock was held). The lock here is a real one, held from
    another connection as an upload's transaction holds it."""
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite: test_a_drop_kept_waiting_on_sqlite_is_refused_in_the_same_seconds_and_recorded")
    company.upload(data=text_bytes(5000, b"one"), name="f.txt", title="File")
    assert _vault(rt, "keys", "rotate").exit_code == 0
    rt.keyring = Keyring.load(keyring_path)

    results = []
    with rt.db.engine.connect() as writer:
        writer.execute(text("SELECT pg_advisory_xact_lock_shared(:lock)"), {"lock": key_lock.LOCK_ID})
        try:
            drop = threading.Thread(target=lambda: results.append(_vault(rt, "keys", "drop", "k0001")))
            drop.start()
            drop.join(timeout=key_lock.EXCLUSIVE_WAIT_SECONDS + 15)
            waited_without_end = drop.is_alive()
        finally:
            writer.rollback()  # the upload's transaction ends: lets an unbounded drop go too
            drop.join()
    assert not waited_without_end

    [refused] = results
    assert refused.exit_code == 1
    assert ("master key k0001 was not dropped: uploads are under way and kept the drop waiting too long; "
            "try again in a moment") in refused.output
    assert Keyring.load(keyring_path).key_ids() == ["k0001", "k0002"]
    [failed] = events(rt, "key:drop")
    assert (failed.outcome, failed.reason_code, json.loads(failed.detail)) == (
        "failed", "uploads_under_way", {"key_id": "k0001"})

    # Once the uploads are through, the same drop goes.
    assert _vault(rt, "keys", "drop", "k0001").exit_code == 0
    assert Keyring.load(keyring_path).key_ids() == ["k0002"]
    assert [e.outcome for e in events(rt, "key:drop")] == ["failed", "allowed"]


@contextmanager
def _writer_under_way(rt, where):
    """SQLite's write lock held as an upload's transaction holds it until its commit: by a connection of
    this process (the drop then waits for its turn) or by one SQLite sees as another process's (the drop
    then waits in SQLite's busy handler)."""
    if where == "this process":
        with rt.db.engine.connect() as writer:
            writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock, until the rollback
            try:
                yield
            finally:
                writer.rollback()
    else:
        writer = sqlite3.connect(rt.db.engine.url.database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            writer.rollback()
            writer.close()


@pytest.mark.parametrize("where", ["this process", "another process"])
def test_a_drop_kept_waiting_on_sqlite_is_refused_in_the_same_seconds_and_recorded(rt, company, keyring_path, where):
    """The writer keeps the lock a little longer than the drop waits, then commits. Before, the drop waited
    up to the connection's 60-second busy timeout, took the lock once the writer was through and dropped the
    key; now it gives up after `EXCLUSIVE_WAIT_SECONDS`, as on PostgreSQL, and its failure is recorded once
    the writer is through (on SQLite the record needs the write lock too)."""
    if rt.db.dialect != "sqlite":
        pytest.skip("PostgreSQL: test_a_drop_kept_waiting_by_uploads_is_refused_in_seconds_and_recorded")
    company.upload(data=text_bytes(5000, b"one"), name="f.txt", title="File")
    assert _vault(rt, "keys", "rotate").exit_code == 0
    rt.keyring = Keyring.load(keyring_path)

    results, started = [], time.monotonic()
    with _writer_under_way(rt, where):
        drop = threading.Thread(target=lambda: results.append(_vault(rt, "keys", "drop", "k0001")))
        drop.start()
        drop.join(timeout=key_lock.EXCLUSIVE_WAIT_SECONDS + 1.5)
    drop.join(timeout=30)
    assert not drop.is_alive()
    assert time.monotonic() - started < key_lock.EXCLUSIVE_WAIT_SECONDS + 4

    [refused] = results
    assert refused.exit_code == 1, refused.output
    assert "master key k0001 was not dropped: uploads are under way" in refused.output
    assert Keyring.load(keyring_path).key_ids() == ["k0001", "k0002"]
    [failed] = events(rt, "key:drop")
    assert (failed.outcome, failed.reason_code, json.loads(failed.detail)) == (
        "failed", "uploads_under_way", {"key_id": "k0001"})
    assert _vault(rt, "keys", "drop", "k0001").exit_code == 0
    assert [e.outcome for e in events(rt, "key:drop")] == ["failed", "allowed"]


@pytest.mark.parametrize("where", ["this process", "another process"])
def test_the_connection_a_refused_lock_used_goes_back_to_the_pool_with_its_usual_wait(rt, where):
    """The bounded wait is the BEGIN's alone: the pooled connection that tried it waits as long as any
    other afterwards (the busy timeout, and its turn among this process's writers)."""
    if rt.db.dialect != "sqlite":
        pytest.skip("the busy timeout is SQLite's")
    db = Database(str(rt.db.engine.url), pool_size=1, max_overflow=0)  # one connection: the one that tried
    try:
        with db.engine.connect() as connection:
            usual = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert usual == 60000
        with _writer_under_way(rt, where):
            started = time.monotonic()
            with pytest.raises(key_lock.KeyLockBusy), db.session() as session:
                key_lock.hold_exclusive(session, wait_seconds=0.3)
            assert time.monotonic() - started < 3
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == usual
            assert connection.connection.dbapi_connection.turn_timeout == 60.0
        # And it writes as before, now that the writer is through.
        with db.session() as session:
            key_lock.hold_exclusive(session)
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def _another_process_rotates(rt, keyring_path, monkeypatch, times: int = 1) -> list[str]:
    """Inject another `vault keys rotate` (another process, its own view of the file) between this rotation's
    `key:rotate` record and its change of the keyring, the first `times` times it records one."""
    made: list[str] = []
    record = rt.audit.record

    def record_then_race(session, **kwargs):
        recorded = record(session, **kwargs)
        if kwargs["action"] == AuditAction.KEY_ROTATE and kwargs.get("outcome", "allowed") == "allowed" \
                and len(made) < times:
            made.append(Keyring.load(keyring_path).rotate())
        return recorded

    monkeypatch.setattr(rt.audit, "record", record_then_race)
    return made


def _rotations(rt):
    return [(e.outcome, e.reason_code, json.loads(e.detail)["active_key_id"]) for e in events(rt, "key:rotate")]


def test_the_rotation_record_names_the_key_actually_made_when_another_rotates_meanwhile(
        rt, company, keyring_path, monkeypatch):
    """`key:rotate` is committed before the keyring changes; another process rotating in between made the key
    this one planned (k0002), and this one went on to make k0003 while its record named k0002. Now the
    keyring makes only the key that was recorded: the planned one taken, the record is followed by its
    failure (`keyring_changed`), and a fresh id is planned, recorded and made."""
    _upload_three(company)
    made_by_other = _another_process_rotates(rt, keyring_path, monkeypatch)
    result = keys.rotate(rt)
    monkeypatch.undo()
    assert made_by_other == ["k0002"]
    assert result.active_key_id == "k0003" and result.previous_key_id == "k0002"
    assert Keyring.load(keyring_path).key_ids() == ["k0001", "k0002", "k0003"]
    assert Keyring.load(keyring_path).active_key_id == "k0003"
    assert _rotations(rt) == [("allowed", None, "k0002"), ("failed", "keyring_changed", "k0002"),
                              ("allowed", None, "k0003")]
    [failed] = [json.loads(e.detail) for e in events(rt, "key:rotate") if e.outcome == "failed"]
    assert failed == {"active_key_id": "k0002", "previous_key_id": "k0001", "found_active_key_id": "k0002"}
    [rewrap] = events(rt, "key:rewrap")
    assert json.loads(rewrap.detail)["active_key_id"] == "k0003"
    assert {v.key_id for v in _versions(rt)} == {"k0003"}


def test_a_rotation_always_outrun_gives_up_and_makes_no_key_of_its_own(rt, company, keyring_path, monkeypatch):
    """The control of the retry: it is bounded, and every planned id it recorded is answered by its failure."""
    made_by_other = _another_process_rotates(rt, keyring_path, monkeypatch, times=keys.ROTATE_ATTEMPTS)
    with pytest.raises(ServiceError) as refused:
        keys.rotate(rt)
    monkeypatch.undo()
    assert refused.value.code == "keyring_changed"
    assert Keyring.load(keyring_path).key_ids() == ["k0001", *made_by_other]
    assert _rotations(rt) == [row for planned in made_by_other
                              for row in (("allowed", None, planned), ("failed", "keyring_changed", planned))]
    assert events(rt, "key:rewrap") == []


def test_a_rotation_alone_is_recorded_once(rt, company, keyring_path):
    _upload_three(company)
    assert keys.rotate(rt).active_key_id == "k0002"
    assert _rotations(rt) == [("allowed", None, "k0002")]
