"""Signed checkpoints: when they are written, where, under what protection, and that plain openssl
verifies them with the exported public key."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from storage import ObjectLocked, StorageError
from tests.audit.conftest import CTX, append
from vault.audit.checkpoints import Checkpointer, CheckpointError, SignedCheckpoint, object_key
from vault.audit.verify import verify_chain
from vault.models import AuditCheckpoint, AuditEvent, AuditHead


def stored_seqs(store) -> list[int]:
    return [int(info.key.rsplit("/", 1)[1][:-5]) for info in store.list("audit/checkpoints/")]


def test_a_checkpoint_every_n_records_in_the_store_and_the_database(rt):
    append(rt, 25)
    assert stored_seqs(rt.store) == [10, 20]
    with rt.db.session() as session:
        rows = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
        head = session.get(AuditHead, 1)  # the one chain (shard 1)
        macs = {seq: session.get(AuditEvent, seq).mac for seq in (10, 20)}
    assert [(r.seq, json.loads(r.heads), r.object_key) for r in rows] == [
        (10, [[1, 10, macs[10]]], object_key(10)), (20, [[1, 20, macs[20]]], object_key(20))]
    assert head.last_checkpoint_seq == 20
    with rt.store.open(object_key(20)) as handle:
        stored = SignedCheckpoint.from_bytes(handle.read())
    assert (stored.seq, stored.heads) == (20, {1: (20, macs[20])})
    assert stored.verify(rt.keyring.checkpoint_private_key.public_key())
    assert object_key(20) == "audit/checkpoints/00000000000000000020.json"


def test_a_checkpoint_after_m_minutes_even_below_n_records(rt):
    append(rt, 3)
    assert stored_seqs(rt.store) == []
    with rt.db.engine.begin() as connection:
        connection.execute(update(AuditHead).values(last_checkpoint_at=datetime.now(UTC) - timedelta(minutes=61)))
    append(rt, 1)
    assert stored_seqs(rt.store) == [4]
    append(rt, 1)
    assert stored_seqs(rt.store) == [4]  # the clock restarted at the checkpoint


def test_no_checkpoint_for_a_transaction_that_rolls_back(rt):
    """A signed, write-once checkpoint of a head that never committed would accuse an honest log."""
    append(rt, 8)
    session = rt.db.sessions()
    try:
        for _ in range(5):
            rt.audit.record(session, action="storage:fsck", actor=None, ctx=CTX)
        session.rollback()
    finally:
        session.close()
    assert stored_seqs(rt.store) == []
    append(rt, 2)
    assert stored_seqs(rt.store) == [10]
    assert verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).ok


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_sqlite_syncs_the_records_a_checkpoint_signs_before_storing_it(rt, monkeypatch):
    """SQLite in WAL mode with synchronous=NORMAL syncs its WAL only at its own checkpoints, so a power
    cut loses the last commits; a stored checkpoint vouching for them would then accuse the log for ever.
    A power cut cannot be made on demand: what is checked is that the WAL holding the signed records
    reaches the disk before the checkpoint is stored. (PostgreSQL's crash is made for real in
    tests/reliability/test_durable_checkpoints.py.)"""
    append(rt, 9)
    wal = os.path.realpath(rt.settings.database.removeprefix("sqlite:///") + "-wal")
    events: list[tuple[str, str]] = []
    real_fsync, real_put = os.fsync, rt.store.put

    def fsync(fd: int) -> None:
        events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def put(key: str, *args, **kwargs):
        events.append(("put", key))
        return real_put(key, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(rt.store, "put", put)
    append(rt, 1)
    assert ("put", object_key(10)) in events
    assert ("fsync", wal) in events[:events.index(("put", object_key(10)))], events


def test_a_store_failure_delays_the_checkpoint_but_not_the_act(rt):
    append(rt, 9)
    blocker = rt.store.root / "audit"
    blocker.write_text("not a folder")  # the store cannot create audit/checkpoints/ now
    seqs = append(rt, 2)
    with rt.db.session() as session:
        assert session.get(AuditEvent, seqs[-1]) is not None  # the acts and their records stand
        assert session.get(AuditHead, 1).last_checkpoint_seq == 0
    blocker.unlink()
    append(rt, 1)  # still due: the next append retries
    assert stored_seqs(rt.store) == [12]


def test_stored_checkpoints_are_write_once(rt):
    append(rt, 10)
    assert rt.store.supports_retention
    with pytest.raises(ObjectLocked):
        rt.store.delete(object_key(10))
    with pytest.raises(ObjectLocked):
        rt.store.put(object_key(10), __import__("io").BytesIO(b"{}"), length=2)


def test_forced_checkpoint_and_nothing_new(rt):
    checkpointer = rt.audit.checkpoints
    assert checkpointer.write() is None  # empty log
    append(rt, 3)
    first = checkpointer.write()
    assert first is not None and first.seq == 3
    assert checkpointer.write() is None  # nothing new since
    again = checkpointer.write(at=first.heads)
    assert again == first  # the stored one, not a second signature


def test_checkpoint_verifies_with_plain_openssl(rt, tmp_path):
    append(rt, 10)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(rt.audit.checkpoints.public_key_pem())
    with rt.store.open(object_key(10)) as handle:
        stored = json.loads(handle.read())
    # What `jq -j .message` and `jq -r .signature | base64 -d` give an outside verifier.
    message, signature = tmp_path / "checkpoint-message.bin", tmp_path / "sig.bin"
    message.write_bytes(stored["message"].encode("ascii"))
    signature.write_bytes(base64.b64decode(stored["signature"]))
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
               "-in", str(message), "-sigfile", str(signature)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout
    assert json.loads(stored["message"]) == {"format": "vault-audit-checkpoint/2", "seq": 10, "heads": stored["heads"],
                                             "ts": stored["ts"]}
    mac = stored["heads"][0][2]
    message.write_bytes(stored["message"].replace(mac, "0" * 64).encode("ascii"))
    refused = subprocess.run(command, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"], capture_output=True,
                         check=True).stdout
    assert stored["public_key_fingerprint"] == "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.s3
@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_checkpoints_on_s3_are_under_object_lock(rt, s3_store):
    s3_store.ensure_ready()
    rt.audit.checkpoints = Checkpointer(rt.db, s3_store, rt.keyring, rt.settings)
    append(rt, 12)
    assert stored_seqs(s3_store) == [10]
    assert s3_store.supports_retention
    with pytest.raises(ObjectLocked):
        s3_store.delete(object_key(10))
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok and report.checkpoints == 1, report.summary()


def test_unreadable_store_makes_verification_fail_loudly(rt):
    append(rt, 10)
    rt.store.root.rename(rt.store.root.with_name("moved"))
    with pytest.raises(StorageError):
        verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)


def test_a_checkpoint_written_while_verification_starts_is_not_called_missing(rt):
    """The object is stored before its row commits; a row newer than our listing is looked up again."""

    class WriterRacingTheListing(Checkpointer):
        def stored_checkpoints(self, since: int = 0):
            listed = super().stored_checkpoints(since)
            self.write()  # another worker checkpoints right after the listing, before the snapshot
            return listed

    append(rt, 5)
    racing = WriterRacingTheListing(rt.db, rt.store, rt.keyring, rt.settings)
    report = verify_chain(rt.db, rt.audit.key, racing)
    assert report.ok, report.summary()
    assert report.checkpoints == 1


@pytest.mark.parametrize("message", [5, ["a"], {"seq": 1}, True])
def test_a_checkpoint_whose_message_is_not_text_is_named_damaged_not_a_crash(rt, message):
    """`vault audit verify`, the verify API and `verify-export` raised on a stored checkpoint whose message
    had been changed to a number: they now name it as damaged, as any other malformed checkpoint."""
    append(rt, 10)
    with rt.store.open(object_key(10)) as handle:
        stored = json.loads(handle.read())
    stored["message"] = message
    with pytest.raises(CheckpointError, match="message is not text"):
        SignedCheckpoint.from_json(stored)
    with pytest.raises(CheckpointError):
        SignedCheckpoint.from_bytes(json.dumps(stored).encode())
