"""The shortcuts of the bulk reads must give exactly what the plain ways give: the prepared HMAC, the
read-ahead thread, and the CSV writer's one-call path with its check for cells that need escaping."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.audit.conftest import append, attack, drop_append_only
from tests.audit.filler import fill
from vault.audit import rows
from vault.audit.chain import hmac_pads, mac_function
from vault.audit.export import FORMULA_STARTS, AuditExport, _needs_care, _write_rows, _write_rows_carefully
from vault.audit.filters import AuditFilter
from vault.audit.verify import verify_chain
from vault.models import AuditEvent


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=0, max_size=150), message=st.binary(max_size=300))
def test_prepared_hmac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    """Keys shorter and longer than a SHA-256 block (longer ones are hashed first, as RFC 2104 says)."""
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert mac_function(key)(message) == expected
    inner, outer = hmac_pads(key)
    h = inner.copy()
    h.update(message)
    o = outer.copy()
    o.update(h.digest())
    assert o.hexdigest() == expected


def test_read_ahead_gives_every_batch_in_order(rt) -> None:
    append(rt, 7)
    query = select(AuditEvent.seq).order_by(AuditEvent.seq)
    with rows.read_snapshot(rt.db) as connection:
        plain = list(rows.batches(connection, query, 3))
        ahead = list(rows.read_ahead(connection, query, 3))
    assert ahead == plain and [len(batch) for batch in ahead] == [3, 3, 1]


def test_read_ahead_stopped_early_frees_the_connection(rt) -> None:
    """Closing the iterator mid-way waits for the helper thread, so the connection can be used again."""
    append(rt, 9)
    query = select(AuditEvent.seq).order_by(AuditEvent.seq)
    with rows.read_snapshot(rt.db) as connection:
        reader = rows.read_ahead(connection, query, 2)
        assert [seq for seq, in next(reader)] == [1, 2]
        reader.close()
        assert not any(thread.name == "audit-read-ahead" for thread in threading.enumerate())
        assert connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 9


def test_read_ahead_raises_the_readers_error_in_the_caller(rt) -> None:
    append(rt, 2)
    broken = select(AuditEvent.seq, func.no_such_function(AuditEvent.seq))
    with rows.read_snapshot(rt.db) as connection, pytest.raises(Exception, match="no_such_function"):
        list(rows.read_ahead(connection, broken))
    assert not any(thread.name == "audit-read-ahead" for thread in threading.enumerate())


cells = st.none() | st.integers(-5, 5) | st.text(st.sampled_from([*FORMULA_STARTS, "a", ",", '"', "\n", " ", "é"]),
                                                max_size=6)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(st.tuples(cells, cells, cells), max_size=6), header=st.booleans())
def test_csv_fast_path_writes_what_the_careful_path_writes(batch, header) -> None:
    """Whatever the cells, the batch written in one call (and rewritten when the check says so) is
    byte for byte what the row-by-row escaping path writes."""
    def written(write) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(("seq", "name", "note"))
        write(buffer, writer, batch)
        return buffer.getvalue()

    assert written(_write_rows) == written(_write_rows_carefully)


@pytest.mark.parametrize("text", ["1,=2\n", '1,"=2,3"\n', "+1,a\n", "1,a\n\t2,b\n", "1,'q\n", "1,a\rb\n", "1,-2\n",
                                  '1,"-2,3"\n', "1,@x\n"])
def test_the_check_finds_every_cell_that_needs_escaping(text) -> None:
    assert _needs_care("\n" + text)


@pytest.mark.parametrize("text", ["1,a\n", "1,a-b,2026-03-01T08:09:10Z\n", '1,"{""n"":-1}"\n', "1,a=b,c+d,e@f\n"])
def test_the_check_passes_plain_batches(text) -> None:
    assert not _needs_care("\n" + text)


# More than two batches of the one-pass read, so damage lies in a batch the helper thread fetched ahead.
MANY = 2 * rows.BATCH + 600


def _place_of(rt, seq: int) -> tuple[int, int]:
    with rt.db.session() as session:
        found = session.execute(select(AuditEvent.shard, AuditEvent.shard_seq).where(AuditEvent.seq == seq)).one()
    return int(found[0]), int(found[1])


def _seq_at(rt, shard: int, place: int) -> int:
    with rt.db.session() as session:
        return int(session.scalar(select(AuditEvent.seq).where(AuditEvent.shard == shard,
                                                               AuditEvent.shard_seq == place)))


def test_a_long_log_in_many_chains_verifies_through_every_batch(rt) -> None:
    fill(rt.db, rt.audit.key, MANY, shards=8)
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints)
    assert report.ok, report.summary()
    assert (report.checked, report.last_seq, report.shards) == (MANY, MANY, 8)


@pytest.mark.parametrize("kind", ["modified", "deleted", "reordered", "truncated"])
def test_damage_in_a_later_batch_is_named_with_its_chain_and_place(rt, kind) -> None:
    fill(rt.db, rt.audit.key, MANY, shards=8)
    drop_append_only(rt)
    victim = MANY - 300
    shard, place = _place_of(rt, victim)
    if kind == "modified":
        attack(rt, "UPDATE audit_events SET document_id = 4242 WHERE seq = :seq", seq=victim)
    elif kind == "deleted":
        attack(rt, "DELETE FROM audit_events WHERE seq = :seq", seq=victim)
    elif kind == "reordered":
        other = _seq_at(rt, shard, place + 2)
        attack(rt, "UPDATE audit_events SET shard_seq = -1 WHERE seq = :a",
               "UPDATE audit_events SET shard_seq = :place WHERE seq = :b",
               "UPDATE audit_events SET shard_seq = :later WHERE seq = :a",
               a=victim, b=other, place=place, later=place + 2)
    else:
        attack(rt, "DELETE FROM audit_events WHERE shard = :shard AND shard_seq >= :place", shard=shard, place=place)
    first = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints).first
    assert first is not None
    assert (first.kind, first.shard, first.shard_seq) == (kind, shard, place), first
    assert first.message.startswith(f"shard {shard}: ")


@pytest.mark.parametrize("db_backend", ["postgresql"])  # just-in-time compilation is PostgreSQL's
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_runs_without_just_in_time_compilation(rt, db_backend, fmt) -> None:
    """PostgreSQL compiles the expressions of a read as big as the whole log, which cost the CSV export a
    seventh of its speed (see `export.NO_JIT`): the export turns it off for its own transaction only."""
    append(rt, 3)
    with AuditExport(rt.db, rt.audit.checkpoints, AuditFilter(), fmt) as export:
        assert b"".join(export.chunks())
        assert export._connection is not None
        assert export._connection.exec_driver_sql("SHOW jit").scalar_one() == "off"
    with rt.db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW jit").scalar_one() == "on"
