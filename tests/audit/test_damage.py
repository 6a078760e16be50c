"""Each kind of damage done directly in the database, as an attacker holding it would, is reported with
the first bad sequence number and its kind. The attacker first drops the append-only trigger."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from tests.audit.conftest import append, attack, drop_append_only
from vault.audit.chain import compute_mac, record_dict
from vault.audit.checkpoints import SignedCheckpoint, object_key
from vault.audit.verify import verify_chain
from vault.core.context import AccessContext
from vault.models import AuditCheckpoint, AuditEvent, AuditHead
from vault.services import audit as audit_service
from vault.services.maintenance import run_due_checkpoint

COUNT = 25  # checkpoints at 10 and 20 (every 10 records)


@pytest.fixture
def chain(rt):
    append(rt, COUNT)
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok, report.summary()
    assert report.checkpoints == 2
    drop_append_only(rt)
    return rt


def first_damage(rt, from_seq: int = 1):
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints, from_seq=from_seq)
    assert not report.ok
    return report.first.seq, report.first.kind


def _swap(rt, a: int, b: int) -> None:
    # The record number and the place in the chain move together, as an attacker would move them.
    attack(rt, "UPDATE audit_events SET seq = -1, shard_seq = -1 WHERE seq = :a",
           "UPDATE audit_events SET seq = :a, shard_seq = :a WHERE seq = :b",
           "UPDATE audit_events SET seq = :b, shard_seq = :b WHERE seq = -1", a=a, b=b)


def _forged(seq: int) -> dict:
    return {"seq": seq, "shard": 1, "shard_seq": seq,
            "ts": datetime.now(UTC), "actor_id": None, "actor_name": "mallory", "action": "auth:login",
            "outcome": "allowed", "detail": "{}", "mac": "0" * 64}


def test_intact_chain_reports_no_damage(chain):
    report = verify_chain(chain.db, chain.audit.key, chain.audit.checkpoints)
    assert report.ok and report.checked == COUNT and report.last_seq == COUNT and report.head_seq == COUNT


def test_modified_row(chain):
    attack(chain, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 7")
    assert first_damage(chain) == (7, "modified")


def test_modified_last_row(chain):
    attack(chain, "UPDATE audit_events SET outcome = 'denied' WHERE seq = :seq", seq=COUNT)
    assert first_damage(chain) == (COUNT, "modified")


def test_deleted_middle_row(chain):
    attack(chain, "DELETE FROM audit_events WHERE seq = 7")
    assert first_damage(chain) == (7, "deleted")


def test_deleted_row_with_the_gap_closed(chain):
    attack(chain, "DELETE FROM audit_events WHERE seq = 7",
           "UPDATE audit_events SET seq = seq + 1000, shard_seq = shard_seq + 1000 WHERE seq > 7",
           "UPDATE audit_events SET seq = seq - 1001, shard_seq = shard_seq - 1001 WHERE seq > 1000")
    assert first_damage(chain) == (7, "deleted")


def test_inserted_row(chain):
    attack(chain, "UPDATE audit_events SET seq = seq + 1000, shard_seq = shard_seq + 1000 WHERE seq >= 7",
           "UPDATE audit_events SET seq = seq - 999, shard_seq = shard_seq - 999 WHERE seq > 1000")
    with chain.db.engine.begin() as connection:
        connection.execute(insert(AuditEvent).values(**_forged(7)))
    assert first_damage(chain) == (7, "inserted")


def test_row_inserted_beyond_the_head(chain):
    with chain.db.engine.begin() as connection:
        connection.execute(insert(AuditEvent).values(**_forged(COUNT + 1)))
    assert first_damage(chain) == (COUNT + 1, "inserted")


def test_reordered_neighbours(chain):
    _swap(chain, 7, 8)
    assert first_damage(chain) == (7, "reordered")


def test_reordered_far_apart(chain):
    _swap(chain, 7, 13)
    assert first_damage(chain) == (7, "reordered")


def test_truncated_tail(chain):
    attack(chain, "DELETE FROM audit_events WHERE seq >= 23")
    assert first_damage(chain) == (23, "truncated")


def test_truncated_behind_a_checkpoint_with_the_head_rewritten(chain):
    """The head row is the attacker's to change; the write-once checkpoint at 20 is not."""
    with chain.db.session() as session:
        mac14 = session.get(AuditEvent, 14).mac
    attack(chain, "DELETE FROM audit_events WHERE seq >= 15")
    attack(chain, "UPDATE audit_head SET seq = 14, mac = :mac WHERE id = 1", mac=mac14)
    attack(chain, "DELETE FROM audit_checkpoints WHERE seq = 20")
    assert first_damage(chain) == (15, "truncated")


def test_history_rewritten_with_the_audit_key_is_caught_by_the_checkpoint(chain):
    """Even holding the audit key and recomputing every MAC, the signed checkpoint gives it away."""
    with chain.db.session() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.seq >= 12).order_by(AuditEvent.seq)))
        previous = session.get(AuditEvent, 11).mac
        rewritten = []
        for event in events:
            record = record_dict(event)
            if event.seq == 13:
                record["actor_name"] = "someone innocent"
            previous = compute_mac(chain.audit.key, record, previous)
            rewritten.append((event.seq, record["actor_name"], previous))
    for seq, name, mac in rewritten:
        attack(chain, "UPDATE audit_events SET actor_name = :name, mac = :mac WHERE seq = :seq",
               name=name, mac=mac, seq=seq)
    attack(chain, "UPDATE audit_head SET mac = :mac WHERE id = 1", mac=rewritten[-1][2])
    report = verify_chain(chain.db, chain.audit.key, chain.audit.checkpoints)
    assert (report.first.seq, report.first.kind) == (20, "modified")
    assert "between #11 and #20" in report.first.message


def test_forged_checkpoint_is_reported(chain):
    private = chain.keyring.checkpoint_private_key
    genuine = SignedCheckpoint.sign(private, ((1, 5, "f" * 64),), datetime.now(UTC))
    forged = SignedCheckpoint(5, "", genuine.ts, genuine.signature, genuine.fingerprint, ((1, 5, "f" * 64),))
    tampered = SignedCheckpoint(5, "", genuine.ts, genuine.signature, genuine.fingerprint, ((1, 5, "e" * 64),))
    assert forged.verify(private.public_key()) and not tampered.verify(private.public_key())
    body = tampered.to_bytes()
    chain.store.put(object_key(5), io.BytesIO(body), length=len(body))
    assert first_damage(chain) == (5, "checkpoint")


def test_checkpoint_row_without_its_stored_object_is_reported(chain):
    with chain.db.session() as session:
        session.add(AuditCheckpoint(seq=15, mac="a" * 64, ts=datetime.now(UTC), object_key=object_key(15),
                                    signature="AAAA"))
    assert first_damage(chain) == (15, "checkpoint")


def test_verification_from_a_sequence_number_skips_earlier_damage(chain):
    attack(chain, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 7")
    report = verify_chain(chain.db, chain.audit.key, chain.audit.checkpoints, from_seq=12)
    assert report.ok, report.summary()
    assert (report.checked, report.last_seq) == (COUNT - 11, COUNT)
    attack(chain, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 16")
    assert first_damage(chain, from_seq=12) == (16, "modified")


def test_appends_after_verification_damage_keep_going(chain):
    """Damage is reported, never repaired or hidden: new records still chain from the head."""
    attack(chain, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 7")
    with chain.db.session() as session:
        chain.audit.record(session, action="storage:fsck", actor=None, ctx=AccessContext.cli())
        assert session.get(AuditHead, 1).seq == COUNT + 1
    assert first_damage(chain) == (7, "modified")
    with chain.db.session() as session:
        event = session.get(AuditEvent, COUNT + 1)
        assert event.mac == compute_mac(chain.audit.key, record_dict(event),
                                        session.get(AuditEvent, COUNT).mac)


def test_newest_records_deleted_and_the_head_reset_are_caught_after_a_verification(chain):
    """Finding 5: records after the last periodic checkpoint, deleted with the head reset to match, used to
    pass. A verification signs what it verified, so the store's checkpoint is then ahead of the database."""
    with chain.db.session() as session:
        report = audit_service.verify(chain, session, actor=None, actor_name="cli:tester", ctx=AccessContext.cli())
    assert report.ok, report.summary()
    assert max(chain.audit.checkpoints.stored_checkpoints(), key=lambda c: c.seq).seq == COUNT
    with chain.db.session() as session:
        mac22 = session.get(AuditEvent, 22).mac
    attack(chain, "DELETE FROM audit_events WHERE seq >= 23")
    attack(chain, "UPDATE audit_head SET seq = 22, mac = :mac, last_checkpoint_seq = 20 WHERE id = 1", mac=mac22)
    attack(chain, "DELETE FROM audit_checkpoints WHERE seq > 20")
    report = verify_chain(chain.db, chain.audit.key, chain.audit.checkpoints)
    assert (report.first.seq, report.first.kind) == (23, "truncated")
    assert report.first.message.startswith(
        f"shard 1: records after #22 (seq 22) are missing (the write-once store holds a checkpoint of #{COUNT};")


def test_an_idle_log_is_checkpointed_after_m_minutes(chain):
    """The minute clock is kept by maintenance too, so records followed by silence get signed."""
    assert chain.audit.checkpoints.write_if_stale() is None  # the clock has not run out
    with chain.db.engine.begin() as connection:
        connection.execute(update(AuditHead).values(last_checkpoint_at=datetime.now(UTC) - timedelta(minutes=61)))
    run_due_checkpoint(chain)
    assert max(c.seq for c in chain.audit.checkpoints.stored_checkpoints()) == COUNT
    assert run_due_checkpoint(chain) is None  # nothing new to sign
