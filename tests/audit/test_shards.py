"""The log as eight chains: concurrent writers, damage in any chain found and named, exports checked per
chain, and a log written before sharding upgraded (upgrade 0018) without a MAC changing."""

from __future__ import annotations

import base64
import io
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.audit.conftest import CTX, attack, drop_append_only
from tests.conftest import make_runtime
from vault.audit.chain import CHAINED_FIELDS, compute_mac, format_ts
from vault.audit.checkpoints import SignedCheckpoint, checkpoint_message, object_key, public_key_fingerprint
from vault.audit.export import AuditExport
from vault.audit.filters import AuditFilter
from vault.audit.offline import verify_export
from vault.audit.shards import shard_for
from vault.audit.verify import verify_chain
from vault.db import schema
from vault.db.engine import Database
from vault.models import AuditEvent, AuditHead, User

WRITERS = 8
EACH = 12


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"audit_checkpoint_every": 40, "audit_shards": 8}


def _person(number: int) -> User:
    # Only the id and the name are read by an append; records keep no foreign keys.
    return User(id=number, username=f"writer{number}")


def _write_concurrently(rt) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def work(number: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                with rt.db.session() as session:
                    rt.audit.record(session, action="document:view", actor=_person(number), ctx=CTX,
                                    document_id=i + 1, detail={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, WRITERS + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@pytest.fixture
def log(rt):
    _write_concurrently(rt)
    return rt


def _events(rt) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _record(rt, shard: int, place: int) -> AuditEvent:
    return next(e for e in _events(rt) if (e.shard, e.shard_seq) == (shard, place))


def test_the_shard_is_a_stable_function_of_the_actor():
    assert [shard_for(n, None, 8) for n in range(1, 9)] == [2, 3, 4, 5, 6, 7, 8, 1]
    assert shard_for(None, "cli:root", 8) == shard_for(None, "cli:root", 8) != 0
    assert {shard_for(None, f"name{n}", 8) for n in range(200)} == set(range(1, 9))
    assert shard_for(7, "ignored", 1) == 1


def test_eight_concurrent_writers_append_to_eight_chains_that_verify(log):
    events = _events(log)
    assert len(events) == WRITERS * EACH
    assert len({e.seq for e in events}) == len(events)
    assert {e.shard for e in events} == set(range(1, 9))
    for shard in range(1, 9):
        chain = [e for e in events if e.shard == shard]
        # Each chain is contiguous, and the global number grows along it.
        assert [e.shard_seq for e in chain] == list(range(1, EACH + 1))
        previous = ""
        for event in chain:
            assert event.mac == compute_mac(log.audit.key, {
                **{name: getattr(event, name) if name != "ts" else format_ts(event.ts) for name in CHAINED_FIELDS},
                "detail": {"i": event.shard_seq - 1}, "shard": shard, "shard_seq": event.shard_seq}, previous)
            previous = event.mac
    report = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    assert report.ok, report.summary()
    assert report.checked == WRITERS * EACH and report.shards == 8
    # Checkpoints sign all heads together: with 8 chains of 12 and a share of 5 per chain, several were
    # written, each covering more than one chain.
    assert report.checkpoints >= 2
    stored = [c for c in log.audit.checkpoints.stored_checkpoints() if isinstance(c, SignedCheckpoint)]
    assert max(len(c.heads) for c in stored) > 1
    assert all(c.seq == sum(place for place, _mac in c.heads.values()) for c in stored)


@pytest.mark.parametrize("shard", [3, 8])
def test_a_tampered_record_in_any_chain_is_found_and_named(log, shard):
    drop_append_only(log)
    victim = _record(log, shard, 4)
    attack(log, "UPDATE audit_events SET document_id = 999 WHERE seq = :seq", seq=victim.seq)
    report = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    first = report.first
    assert (first.seq, first.kind, first.shard, first.shard_seq) == (victim.seq, "modified", shard, 4)
    assert first.message.startswith(f"shard {shard}: record #4 (seq {victim.seq})")
    assert report.as_dict()["first_bad_shard"] == shard
    # The other chains were verified all the same.
    assert report.checked >= (WRITERS - 1) * EACH


def test_a_deleted_record_in_a_non_zero_chain_is_found(log):
    drop_append_only(log)
    before, victim = _record(log, 6, 6), _record(log, 6, 7)
    attack(log, "DELETE FROM audit_events WHERE seq = :seq", seq=victim.seq)
    first = verify_chain(log.db, log.audit.key, log.audit.checkpoints).first
    assert (first.kind, first.shard, first.shard_seq) == ("deleted", 6, 7)
    assert first.seq == before.seq + 1 and "record(s) #7 are missing" in first.message


def test_a_deleted_record_with_the_places_closed_up_is_found(log):
    drop_append_only(log)
    victim = _record(log, 2, 5)
    # Only the places are renumbered: record numbers have gaps anyway in a sharded log.
    attack(log, "DELETE FROM audit_events WHERE seq = :seq", "UPDATE audit_events SET shard_seq = shard_seq + 1000 "
           "WHERE shard = 2 AND shard_seq > 5", "UPDATE audit_events SET shard_seq = shard_seq - 1001 "
           "WHERE shard = 2 AND shard_seq > 1000", seq=victim.seq)
    first = verify_chain(log.db, log.audit.key, log.audit.checkpoints).first
    assert (first.kind, first.shard, first.shard_seq) == ("deleted", 2, 5)


def test_records_swapped_within_a_chain_are_reordered(log):
    drop_append_only(log)
    a, b = _record(log, 4, 3), _record(log, 4, 6)
    attack(log, "UPDATE audit_events SET shard_seq = -1 WHERE seq = :a",
           "UPDATE audit_events SET shard_seq = 3 WHERE seq = :b",
           "UPDATE audit_events SET shard_seq = 6 WHERE seq = :a", a=a.seq, b=b.seq)
    first = verify_chain(log.db, log.audit.key, log.audit.checkpoints).first
    assert (first.kind, first.shard, first.shard_seq) == ("reordered", 4, 3)


def test_a_record_moved_to_another_chain_is_found(log):
    drop_append_only(log)
    moved = _record(log, 5, EACH)
    attack(log, "UPDATE audit_events SET shard = 7, shard_seq = :place WHERE seq = :seq", place=EACH + 1,
           seq=moved.seq)
    report = verify_chain(log.db, log.audit.key, log.audit.checkpoints)
    kinds = {(d.shard, d.kind) for d in report.damage}
    assert (5, "truncated") in kinds and (7, "inserted") in kinds


def test_a_truncated_chain_is_found_even_with_its_head_reset(log):
    log.audit.checkpoints.write()  # signs every head as it stands
    drop_append_only(log)
    kept = _record(log, 1, EACH - 2)
    attack(log, "DELETE FROM audit_events WHERE shard = 1 AND shard_seq > :place",
           "UPDATE audit_head SET seq = :place, mac = :mac WHERE id = 1", place=EACH - 2, mac=kept.mac)
    first = verify_chain(log.db, log.audit.key, log.audit.checkpoints).first
    assert (first.kind, first.shard, first.shard_seq) == ("truncated", 1, EACH - 1)
    assert "write-once store" in first.message


def test_a_full_export_is_one_chain_per_shard_offline(log, tmp_path):
    out = tmp_path / "log.jsonl"
    with AuditExport(log.db, log.audit.checkpoints, AuditFilter(), "jsonl") as export, out.open("wb") as handle:
        for chunk in export.chunks():
            handle.write(chunk)
        manifest = export.manifest(file_name=out.name, event_seq=None)
    assert manifest["rows"] == WRITERS * EACH and len(manifest["checkpoint"]["heads"]) == 8
    keys = {"audit_key": log.audit.key, "public_key": log.keyring.checkpoint_private_key.public_key()}
    check = verify_export(out, manifest, **keys)
    assert check.ok, check.problems
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    dropped = next(i for i, line in enumerate(lines) if '"shard":3,"shard_seq":5,' in line)
    out.write_text("".join(lines[:dropped] + lines[dropped + 1:]), encoding="utf-8")
    problems = verify_export(out, manifest, **keys).problems
    assert any("a full export jumps in shard 3 from #4 to #6" in p for p in problems)


def _legacy_log(database: Database, key: bytes, count: int) -> list[dict[str, Any]]:
    """Records written as the single chain wrote them, before upgrade 0018."""
    records, previous = [], ""
    with database.engine.begin() as connection:
        for seq in range(1, count + 1):
            ts = datetime(2026, 11, 1, 9, 0, seq, tzinfo=UTC)
            record = {name: None for name in CHAINED_FIELDS} | {
                "seq": seq, "ts": format_ts(ts), "actor_id": seq % 3 + 1, "actor_name": f"old{seq % 3}",
                "action": "auth:login", "outcome": "allowed", "detail": {"n": seq}}
            previous = compute_mac(key, record, previous)
            connection.execute(text(
                "INSERT INTO audit_events (seq, ts, actor_id, actor_name, action, outcome, detail, mac) "
                "VALUES (:seq, :ts, :actor_id, :actor_name, :action, :outcome, :detail, :mac)"),
                {**record, "ts": ts if database.dialect == "postgresql" else ts.strftime("%Y-%m-%d %H:%M:%S.%f"),
                 "detail": f'{{"n":{seq}}}', "mac": previous})
            records.append({**record, "mac": previous})
        connection.execute(text("UPDATE audit_head SET seq = :seq, mac = :mac WHERE id = 1"),
                           {"seq": count, "mac": previous})
    return records


@pytest.fixture
def old_database(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        name = f"old{abs(hash(str(tmp_path))) % 10**8}"
        cluster.create_database(name)
        url = cluster.url(name)
    database = Database(url)
    schema.upgrade(database, "0014")
    yield url, database
    database.dispose()
    if db_backend == "postgresql":
        cluster.drop_database(name)


def test_a_log_written_before_sharding_upgrades_and_keeps_verifying(old_database, tmp_path, keyring_path):
    url, database = old_database
    rt = make_runtime(tmp_path / "data", url, keyring_path, audit_shards=8, audit_checkpoint_every=1000)
    try:
        rt.store.ensure_ready()
        old = _legacy_log(database, rt.audit.key, 6)
        # The single chain's checkpoint, as it was signed then (format 1), in the write-once store.
        private = rt.keyring.checkpoint_private_key
        stamp = format_ts(datetime(2026, 11, 1, 10, tzinfo=UTC))
        signature = base64.b64encode(private.sign(checkpoint_message(6, old[-1]["mac"], stamp))).decode()
        legacy = SignedCheckpoint(6, old[-1]["mac"], stamp, signature, public_key_fingerprint(private.public_key()))
        body = legacy.to_bytes()
        rt.store.put(object_key(6), io.BytesIO(body), length=len(body))
        schema.upgrade(database)
        with rt.db.session() as session:
            shard0 = list(session.scalars(select(AuditEvent).where(AuditEvent.shard == 0).order_by(AuditEvent.seq)))
            assert [(e.seq, e.shard_seq, e.mac) for e in shard0] == [(r["seq"], r["seq"], r["mac"]) for r in old]
            assert (session.get(AuditHead, 0).seq, session.get(AuditHead, 1)) == (6, None)
        for number in (1, 2, 3):
            with rt.db.session() as session:
                event = rt.audit.record(session, action="auth:login", actor=_person(number), ctx=CTX)
                assert event.shard == number + 1 and event.seq == 6 + number
        report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
        assert report.ok, report.summary()
        assert report.checked == 9 and report.checkpoints == 1 and report.shards == 4
        out = tmp_path / "upgraded.jsonl"
        with AuditExport(rt.db, rt.audit.checkpoints, AuditFilter(), "jsonl") as export, out.open("wb") as handle:
            for chunk in export.chunks():
                handle.write(chunk)
            manifest = export.manifest(file_name=out.name, event_seq=None)
        check = verify_export(out, manifest, audit_key=rt.audit.key, public_key=private.public_key())
        assert check.ok, check.problems
        # Shard 0 is closed but still guarded: a change in it is found as before.
        drop_append_only(rt)
        attack(rt, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 2")
        first = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).first
        assert (first.seq, first.kind, first.shard) == (2, "modified", 0)
    finally:
        rt.close()
