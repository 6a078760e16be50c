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

from tests.audit.conftest import append
from vault.audit import rows
from vault.audit.chain import hmac_pads, mac_function
from vault.audit.export import FORMULA_STARTS, _needs_care, _write_rows, _write_rows_carefully
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
