"""Exports: what a row carries, the signed manifest, offline checks without the database, and memory
that does not grow with the number of rows."""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import tracemalloc

import pytest
from sqlalchemy import func, select

from tests.audit.conftest import append
from tests.audit.filler import fill
from tests.support.factories import make_document
from vault.audit.chain import CHAINED_FIELDS, compute_mac
from vault.audit.export import CHUNK, CSV_HEADER, AuditExport, unescape_cell
from vault.audit.filters import AuditFilter, parse
from vault.audit.offline import verify_export
from vault.audit.rows import BATCH
from vault.core.context import AccessContext
from vault.models import AuditEvent, Customer, Document, Role, User
from vault.services.audit import export_to_file, manifest_path

CLI = AccessContext.cli()


def _export(rt, path, fmt="jsonl", filters=None):
    return export_to_file(rt, filters=filters or AuditFilter(), fmt=fmt, path=path, actor=None, ctx=CLI,
                          actor_name="cli:tester")


def _keys(rt):
    return {"audit_key": rt.audit.key, "public_key": rt.keyring.checkpoint_private_key.public_key()}


def test_full_jsonl_export_is_one_verifiable_chain(rt, tmp_path):
    append(rt, 12)
    out = tmp_path / "log.jsonl"
    manifest = _export(rt, out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # The export's own record (seq 13) was committed before the snapshot, so it is the last row.
    assert [row["seq"] for row in lines] == list(range(1, 14))
    assert lines[-1]["action"] == "audit:export" and lines[-1]["actor_name"] == "cli:tester"
    assert lines[-1]["detail"] == {"destination": "file", "filters": {}, "format": "jsonl"}
    previous = ""
    for row in lines:
        # One chain here (see conftest): every row is shard 1, at its own number.
        assert set(row) == {*CHAINED_FIELDS, "shard", "shard_seq", "mac", "prev_mac", "names"}
        assert (row["shard"], row["shard_seq"]) == (1, row["seq"])
        assert row["prev_mac"] == previous
        assert compute_mac(rt.audit.key, {k: row[k] for k in (*CHAINED_FIELDS, "shard", "shard_seq")},
                           previous) == row["mac"]
        previous = row["mac"]
    assert manifest_path(out).exists()
    assert json.loads(manifest_path(out).read_text()) == manifest
    assert manifest["rows"] == 13 and (manifest["first_seq"], manifest["last_seq"]) == (1, 13)
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["full"] is True and manifest["filters"] == {} and manifest["export_event_seq"] == 13
    assert manifest["checkpoint"]["seq"] == 13 and manifest["checkpoint"]["heads"] == [[1, 13, lines[-1]["mac"]]]
    check = verify_export(out, manifest, **_keys(rt))
    assert check.ok, check.problems
    assert check.rows == 13


def test_filtered_export_rows_carry_their_previous_mac(rt, tmp_path):
    append(rt, 6, action="key:rotate")
    append(rt, 6, action="key:drop")
    append(rt, 2, action="key:rotate")
    out = tmp_path / "kept.jsonl"
    manifest = _export(rt, out, filters=parse({"action": "key:rotate"}))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["seq"] for row in lines] == [1, 2, 3, 4, 5, 6, 13, 14]
    with rt.db.session() as session:
        assert lines[6]["prev_mac"] == session.get(AuditEvent, 12).mac
    assert manifest["full"] is False and manifest["filters"] == {"action": "key:rotate"}
    assert manifest["checkpoint"]["seq"] == 15  # the head after the export's own record
    check = verify_export(out, manifest, **_keys(rt))
    assert check.ok, check.problems


def test_a_changed_row_is_caught_offline(rt, tmp_path):
    append(rt, 5)
    out = tmp_path / "log.jsonl"
    manifest = _export(rt, out)
    text = out.read_text(encoding="utf-8").replace('"actor_name":"tester1"', '"actor_name":"mallory"', 1)
    out.write_text(text, encoding="utf-8")
    no_keys = verify_export(out, manifest)
    assert any("SHA-256" in p for p in no_keys.problems)
    with_key = verify_export(out, manifest, audit_key=rt.audit.key)
    assert any(p == "seq 2 (shard 1, #2): the MAC does not match the record" for p in with_key.problems)
    # Re-hashing the file does not help: the manifest is signed.
    manifest["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    public_only = verify_export(out, manifest, public_key=rt.keyring.checkpoint_private_key.public_key())
    assert any("manifest's signature is invalid" in p for p in public_only.problems)


def test_a_dropped_row_is_caught_offline(rt, tmp_path):
    append(rt, 5)
    out = tmp_path / "log.jsonl"
    manifest = _export(rt, out)
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:2] + lines[3:]), encoding="utf-8")
    check = verify_export(out, manifest, audit_key=rt.audit.key)
    assert "line 3: a full export jumps in shard 1 from #2 to #4" in check.problems
    assert "the file has rows 5, the manifest says 6" in check.problems


def test_csv_export(rt, tmp_path):
    append(rt, 4, customer_id=77)
    out = tmp_path / "log.csv"
    manifest = _export(rt, out, fmt="csv", filters=parse({"customer": "77"}))
    with out.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert tuple(table[0]) == CSV_HEADER
    assert [int(row[0]) for row in table[1:]] == [1, 2, 3, 4]
    assert json.loads(table[1][CSV_HEADER.index("detail")]) == {"i": 0, "note": "équipe \"nord\""}
    assert table[1][CSV_HEADER.index("prev_mac")] == ""
    assert table[2][CSV_HEADER.index("prev_mac")] == table[1][CSV_HEADER.index("mac")]
    assert manifest["file_format"] == "csv" and manifest["rows"] == 4
    check = verify_export(out, manifest, **_keys(rt))
    assert check.ok, check.problems


def test_an_export_is_recorded_even_when_it_matches_nothing(rt, tmp_path):
    out = tmp_path / "none.jsonl"
    manifest = _export(rt, out, filters=parse({"action": "nothing:here"}))
    assert out.read_bytes() == b"" and manifest["rows"] == 0
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).where(AuditEvent.action == "audit:export")) == 1
    assert verify_export(out, manifest, **_keys(rt)).ok


def _peak_export_memory(rt, path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        _export(rt, path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_export_memory_does_not_grow_with_the_number_of_rows(rt, tmp_path):
    fill(rt.db, rt.audit.key, 2_000)
    small = _peak_export_memory(rt, tmp_path / "small.jsonl")
    fill(rt.db, rt.audit.key, 18_000)
    large = _peak_export_memory(rt, tmp_path / "large.jsonl")
    assert json.loads(manifest_path(tmp_path / "large.jsonl").read_text())["rows"] == 20_002
    # Ten times the rows: a design that kept them would need ten times the memory (several MB here).
    assert large < small * 1.5 + 256 * 1024, (small, large)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_comes_in_chunks_not_a_write_per_row(rt, tmp_path, fmt):
    """Hashing, writing and sending happen per chunk: PostgreSQL's COPY hands over one row at a time, so
    its rows are gathered (each chunk but the last holds at least CHUNK bytes); SQLite's rows come a
    batch at a time."""
    fill(rt.db, rt.audit.key, 3_000)
    assert rt.audit.checkpoints is not None
    with AuditExport(rt.db, rt.audit.checkpoints, AuditFilter(), fmt) as export:
        chunks = list(export.chunks())
        assert export.stats.rows == 3_000
        assert export.stats.digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    data = b"".join(chunks)
    assert data.count(b"\n") >= 3_000
    if rt.db.dialect == "postgresql":
        assert len(data) > 2 * CHUNK
        assert all(len(chunk) >= CHUNK for chunk in chunks[:-1]) and len(chunks) <= len(data) // CHUNK + 1
    else:
        assert len(chunks) <= 3_000 // BATCH + 2


def test_exotic_text_survives_both_formats(rt, tmp_path):
    """Quotes, backslashes, control characters, separators and non-BMP text: the database-built lines
    (PostgreSQL's COPY) and the Python-built ones must both parse back to what was recorded."""
    values = ["quote \" back \\ slash", "tab\tnew\nline\r", "\x01\x1e\x1f\x7f", "😀 中文 é", "\u2028", ",;|"]
    for value in values:
        with rt.db.session() as session:
            rt.audit.record(session, action="audit:key_export", actor=None, actor_name=value, ctx=CLI,
                            reason_text=value, detail={"v": value})
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"exotic.{fmt}"
        manifest = _export(rt, out, fmt=fmt, filters=parse({"action": "audit:key_export"}))
        check = verify_export(out, manifest, **_keys(rt))
        assert check.ok and check.rows == len(values), (fmt, check.problems)
    # Split on "\n" only: JSON leaves U+2028 raw, which str.splitlines() would take for a line break.
    text = (tmp_path / "exotic.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.split("\n")[:-1]]
    assert [row["actor_name"] for row in lines] == values
    assert [row["detail"]["v"] for row in lines] == values
    with (tmp_path / "exotic.csv").open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [row["reason_text"] for row in table] == values


def test_names_are_the_same_compact_json_on_either_database(rt, users, tmp_path):
    """The JSON Lines `names` object is built by the database (SQLite's `json_object`, PostgreSQL's
    pieces): compact, escaped as Python escapes, byte for byte the same on both."""
    eva = users.make("eva", Role.BORROWER)
    exotic = 'Éva "E" \\ K\t😀\u2028\x01'
    document_id = make_document(rt, compiler_id=eva.id, grade=1, title="Prix\n«liste»")
    with rt.db.session() as session:
        person = session.get(User, eva.id)
        person.display_name = exotic
        document = session.get(Document, document_id)
        rt.audit.record(session, action="loan:request", actor=person, ctx=CLI, customer_id=document.customer_id,
                        document_id=document_id)
        customer = session.get(Customer, document.customer_id).name
    out = tmp_path / "names.jsonl"
    _export(rt, out, filters=parse({"action": "loan:request"}))
    [line] = out.read_text(encoding="utf-8").split("\n")[:-1]
    names = {"actor": exotic, "customer": customer, "document": "Prix\n«liste»", "subject_user": None}
    assert line.endswith(',"names":' + json.dumps(names, ensure_ascii=False, separators=(",", ":")) + "}")


FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tindent", "\rreturn", "'quoted", "plain", "",
            "é=1", "a-b"]


def test_csv_cells_that_start_like_a_formula_are_escaped(rt, tmp_path):
    """Finding 4: a failed sign-in puts a formula into the log; the CSV must not hand it to a spreadsheet."""
    for value in FORMULAS:
        with rt.db.session() as session:
            rt.audit.record(session, action="auth:login", actor=None, actor_name=value, ctx=CLI.declaring(value),
                            outcome="denied", reason_text=value, detail={"v": value})
    out = tmp_path / "formulas.csv"
    manifest = _export(rt, out, fmt="csv", filters=parse({"action": "auth:login"}))
    with out.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    expected = ["'" + value if value[:1] in "=+-@\t\r'" and value else value for value in FORMULAS]
    for column in ("actor_name", "reason_text", "declared_place"):
        assert [row[column] for row in table] == expected, column
    assert [unescape_cell(row["actor_name"]) for row in table] == FORMULAS
    check = verify_export(out, manifest, **_keys(rt))
    assert check.ok, check.problems
    # The full export escapes too (the other path through the writer).
    full = tmp_path / "full.csv"
    verify = verify_export(full, _export(rt, full, fmt="csv"), **_keys(rt))
    assert verify.ok, verify.problems
    assert "\n=HYP" not in full.read_text(encoding="utf-8") and ",=HYP" not in full.read_text(encoding="utf-8")


def test_verify_export_refuses_a_csv_with_an_unescaped_formula(rt, tmp_path):
    with rt.db.session() as session:
        rt.audit.record(session, action="auth:login", actor=None, actor_name="=1+1", ctx=CLI, outcome="denied")
    out = tmp_path / "one.csv"
    manifest = _export(rt, out, fmt="csv", filters=parse({"action": "auth:login"}))
    edited = out.read_bytes().replace(b"'=1+1", b"=1+1")
    out.write_bytes(edited)
    manifest["sha256"] = hashlib.sha256(edited).hexdigest()
    check = verify_export(out, manifest)
    assert any("formula" in problem for problem in check.problems), check.problems
