"""The canonical encoding: the fast row encoder used for verification and export must produce exactly
the reference bytes, and the chain must link every record to the one before."""

from __future__ import annotations

import json
import threading

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.audit.conftest import CTX, append
from vault.audit import rows
from vault.audit.chain import (
    CHAINED_FIELDS,
    ROW_COLUMNS,
    canonical,
    canonical_detail,
    canonical_row_text,
    compute_mac,
    record_dict,
    row_mac,
)
from vault.audit.verify import verify_chain
from vault.models import AuditEvent, AuditHead

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
maybe_text = st.none() | text
maybe_int = st.none() | st.integers(min_value=1, max_value=2**31 - 1)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)

records = st.fixed_dictionaries({
    "seq": st.integers(min_value=1, max_value=2**62), "ts": st.just("2026-03-01T08:09:10.000123Z"),
    "actor_id": maybe_int, "actor_name": text, "action": text, "outcome": st.sampled_from(["allowed", "denied"]),
    "reason_code": maybe_text, "customer_id": maybe_int, "document_id": maybe_int, "version_id": maybe_int,
    "loan_id": maybe_int, "subject_user_id": maybe_int, "client_addr": maybe_text, "named_place": maybe_text,
    "declared_place": maybe_text, "user_agent": maybe_text, "reason_text": maybe_text, "request_id": maybe_text,
    "detail": st.dictionaries(text, json_values, max_size=4),
})


@settings(max_examples=300, deadline=None)
@given(records)
def test_fast_row_encoding_equals_the_reference(record):
    row = tuple(canonical_detail(record["detail"]) if name == "detail" else record[name] for name in ROW_COLUMNS)
    assert canonical_row_text(row).encode("utf-8") == canonical(record)
    assert row_mac(b"k" * 32, row, "ab" * 32) == compute_mac(b"k" * 32, record, "ab" * 32)


def test_rows_read_from_the_database_encode_like_the_orm_objects(rt):
    append(rt, 3, customer_id=4, document_id=9)
    with rt.db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    with rows.read_snapshot(rt.db) as connection:
        raw = list(rows.stream(connection, rows.chain_query(rt.db.dialect)))
    assert [r[rows.SEQ] for r in raw] == [e.seq for e in events]
    for event, row in zip(events, raw, strict=True):
        assert canonical_row_text(row).encode("utf-8") == canonical(record_dict(event))
        assert row[rows.MAC] == event.mac


def test_each_record_chains_from_the_one_before_in_its_shard(rt):
    append(rt, 4)
    with rt.db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        previous: dict[int, str] = {}
        for event in events:
            assert event.shard >= 1 and event.shard_seq == len([e for e in events[:events.index(event) + 1]
                                                                 if e.shard == event.shard])
            assert event.mac == compute_mac(rt.audit.key, record_dict(event), previous.get(event.shard, ""))
            previous[event.shard] = event.mac
        for shard, mac in previous.items():
            head = session.get(AuditHead, shard)
            last = [e for e in events if e.shard == shard][-1]
            assert (head.seq, head.mac) == (last.shard_seq, mac)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    first = events[0]
    assert (first.client_addr, first.named_place, first.user_agent, first.request_id) == (
        CTX.client_addr, CTX.named_place, CTX.user_agent, CTX.request_id)
    assert json.loads(first.detail) == {"i": 0, "note": "équipe \"nord\""}
    assert first.ts.tzinfo is not None


def test_a_session_reused_after_commit_appends_after_the_real_head(rt):
    """Sessions keep objects after commit; the head must be re-read, or a second append would fork."""
    session = rt.db.sessions()
    try:
        rt.audit.record(session, action="storage:fsck", actor=None)
        session.commit()
        append(rt, 2)  # another worker moves the head meanwhile
        event = rt.audit.record(session, action="storage:fsck", actor=None)
        session.commit()
        assert event.seq == 4
    finally:
        session.close()
    assert verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).ok


def test_a_failed_transaction_leaves_no_trace_in_the_chain(rt):
    append(rt, 2)
    session = rt.db.sessions()
    try:
        rt.audit.record(session, action="storage:fsck", actor=None)
        session.rollback()
    finally:
        session.close()
    append(rt, 1)
    with rt.db.session() as session:
        assert [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))] == [
            "storage:fsck", "storage:fsck", "storage:fsck"]
    assert verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).ok


def test_concurrent_appends_from_eight_workers_stay_one_chain(rt):
    """8 threads, each with its own sessions: seq 1..8N contiguous and the chain verifies."""
    per_thread = 15
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with rt.db.session() as session:
                    rt.audit.record(session, action="storage:fsck", actor=None, actor_name=f"w{n}",
                                    detail={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with rt.db.session() as session:
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        names = list(session.scalars(select(AuditEvent.actor_name)))
    assert seqs == list(range(1, 8 * per_thread + 1))
    assert sorted(set(names)) == [f"w{n}" for n in range(8)]
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok, report.summary()
    assert report.checked == 8 * per_thread
    assert report.checkpoints >= 1  # every 10 records: the post-commit hook ran under concurrency too


def test_chained_fields_are_all_covered():
    assert set(ROW_COLUMNS) == set(CHAINED_FIELDS)
    assert len(CHAINED_FIELDS) == 19


EXOTIC = ["", "plain", "quote \" and backslash \\", "tab\tnew\nline\rcr", "\x01\x1f\x7f", "é ü ß 中文 😀",
          "\u2028\u2029", "'; DROP TABLE audit_events; --", "\ufeffbom", "a" * 400]


def test_the_database_builds_the_same_canonical_text(rt):
    """Verification and export let the database encode records; it must agree with Python byte for byte."""
    for i, value in enumerate(EXOTIC):
        with rt.db.session() as session:
            rt.audit.record(session, action="storage:fsck", actor=None, actor_name=value,
                            ctx=CTX.declaring(value[:200] or None), reason_text=value or None,
                            customer_id=i or None, detail={"v": value, "n": [i, None, True, 1.5]})
    with rt.db.session() as session:
        expected = [canonical(record_dict(e)).decode("utf-8")
                    for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    with rows.read_snapshot(rt.db) as connection:
        built = [row[1] for row in rows.stream(connection, rows.canonical_query(rt.db.dialect))]
    assert built == expected
    assert verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).ok


def test_over_long_values_are_clipped_to_their_columns_on_both_databases(rt):
    with rt.db.session() as session:
        event = rt.audit.record(session, action="storage:fsck", actor=None, actor_name="n" * 500,
                                ctx=CTX.declaring("p" * 500), reason_text="r" * 5000)
    assert (len(event.actor_name), len(event.declared_place), len(event.reason_text)) == (200, 200, 5000)
    with rt.db.session() as session:
        stored = session.get(AuditEvent, event.seq)
        assert (stored.actor_name, stored.declared_place) == (event.actor_name, event.declared_place)
    assert verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).ok
