"""Export the log as CSV or JSON Lines, streamed in constant memory, with a signed manifest.

Every exported row carries its `mac` and the `prev_mac` it chains from (the record before it in its
shard), so an outside auditor holding the audit key can check each row of even a filtered export on its
own, and the rows of a full export as unbroken chains, one per shard. Rows come in record-number order;
JSON Lines rows of shards 1..N carry "shard" and "shard_seq" (chained), CSV rows have them as the last two
columns. The manifest (row count, first and last sequence, SHA-256 of the file, filters, and
the checkpoint that covers the export) is signed with the checkpoint key, so with nothing but the public
key one can tell that the file is the one the vault produced.

A checkpoint is written at the export's snapshot head before the first byte leaves, so the last row of a
full export is vouched for by a signature; for a filtered export the checkpoint is at or after its rows.

Beside the ids each row carries today's names of the people, customer and document it mentions (CSV:
columns after `prev_mac`; JSON Lines: a `names` object). Names are read when the file is made, not
recorded in the chain (a person may be renamed, a record may not change), so they are outside every
MAC; they are inside the file, so the SHA-256 and the signed manifest still vouch for them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, func, literal, select
from sqlalchemy.orm import aliased

from storage import ObjectNotFound, ObjectStore
from vault.audit import rows
from vault.audit.chain import CHAINED_FIELDS, INT_FIELDS, format_ts
from vault.audit.checkpoints import Checkpointer, SignedCheckpoint, object_key
from vault.audit.filters import AuditFilter
from vault.db.engine import Database
from vault.models import AuditEvent, Customer, Document, User, utcnow

FORMATS = ("jsonl", "csv")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
MANIFEST_FORMAT = "vault-audit-export/1"
MANIFEST_PREFIX = "audit/exports/"
CHUNK = 256 * 1024
"""Bytes gathered from PostgreSQL's COPY before they are hashed and passed on."""
_NO_MEMO = "SET LOCAL enable_memoize = off"
"""For the rest of an export's read transaction (PostgreSQL). The planner puts a cache in front of the
lookup of each record's previous MAC, keyed by (shard, shard_seq - 1): a key no other row repeats, so
the cache never hits, and filling and evicting it took a third of the export's time."""
NO_JIT = "SET LOCAL jit = off"
"""For the rest of an export's read transaction (PostgreSQL). An export of the whole log costs more than
`jit_above_cost`, so the planner compiles its expressions (the CSV escapes, the JSON text) with LLVM in
every parallel worker, and for the CSV export that cost more than it saved: a million records ran at
202k a second with it and 232k without (JSON Lines 143k and 146k, within a run's noise; verification,
which reads the same way, gained nothing and keeps the default)."""
CHAINED_HEADER = (*CHAINED_FIELDS, "mac", "prev_mac")
# Today's names beside the recorded ids (see the module text): keys of the JSON Lines `names` object,
# and, with a prefix saying what they name, the CSV columns after the chained ones.
NAME_KEYS = ("actor", "customer", "document", "subject_user")
NAME_COLUMNS = ("actor_display_name", "customer_name", "document_title", "subject_user_display_name")
# The chain a CSV row belongs to and its place, last: exports made before sharding end at the names.
PLACE_COLUMNS = ("shard", "shard_seq")
CSV_HEADER = (*CHAINED_HEADER, *NAME_COLUMNS, *PLACE_COLUMNS)
# A spreadsheet runs a cell that starts like a formula (OWASP "CSV injection"); such cells, and cells that
# already start with the apostrophe used to escape them (so unescaping is exact), get one apostrophe in
# front. A failed sign-in is enough to put any text into the log, so every text column is escaped.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
ESCAPE = "'"
# A cell that starts like a formula in CSV text: right after a separator or a line feed, perhaps after the
# quote that opens a quoted cell (carriage returns are looked for on their own; see `_needs_care`).
_FORMULA_CELL = re.compile("[,\n]\"?[" + re.escape("".join(FORMULA_STARTS)) + "]")
_RARE_STARTS = tuple(start for start in FORMULA_STARTS if start not in "-\r")
_MINUS_CELLS = (",-", "\n-", ',"-', '\n"-')


def escape_cell(value: Any) -> Any:
    """The CSV cell for a database value: text that a spreadsheet would run gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return ESCAPE + value
    return value


def unescape_cell(text: str) -> str:
    """The recorded value behind an exported CSV cell (the inverse of `escape_cell` on text)."""
    return text[1:] if text[:1] == ESCAPE else text


def is_escaped(text: str) -> bool:
    """False for a cell a spreadsheet would run: the export never writes one."""
    return text[:1] not in FORMULA_STARTS or (text[:1] == ESCAPE and text[1:2] in FORMULA_STARTS)


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: its canonical JSON without the signature."""
    body = {key: value for key, value in manifest.items() if key != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def manifest_key(event_seq: int) -> str:
    return f"{MANIFEST_PREFIX}{event_seq:020d}.manifest.json"


def _with_names(query: Any, *, json_for: str | None = None) -> Any:
    """`query` with the current names of the actor, customer, document and subject user added as its
    last columns (outer joins: a record about something since deleted keeps its row, without a name);
    with `json_for` (a dialect), as one column holding the JSON Lines `names` object instead."""
    e = AuditEvent
    actor, subject = aliased(User), aliased(User)
    found = (actor.display_name, Customer.name, Document.title, subject.display_name)
    if json_for is not None:
        pairs = list(zip(NAME_KEYS, found, strict=True))
        query = query.add_columns(rows.json_object_text(json_for, pairs).label("names"))
    else:
        query = query.add_columns(*(column.label(name) for column, name in zip(found, NAME_COLUMNS, strict=True)))
    return (query.outerjoin(actor, actor.id == e.actor_id).outerjoin(Customer, Customer.id == e.customer_id)
            .outerjoin(Document, Document.id == e.document_id).outerjoin(subject, subject.id == e.subject_user_id))


def _quoted(mac: str | None) -> str:
    """A MAC as a JSON value: null for a record that is missing."""
    return "null" if mac is None else f'"{mac}"'


@dataclass
class ExportStats:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    digest: Any = field(default_factory=hashlib.sha256)


class AuditExport:
    """One export: a read snapshot of the log, the checkpoint covering it, and its bytes.

    Open it (or use it as a context manager), iterate `chunks()`, then ask for the `manifest()`.
    """

    def __init__(self, db: Database, checkpointer: Checkpointer, filters: AuditFilter, fmt: str,
                 *, batch: int = rows.BATCH) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        self.db = db
        self.checkpointer = checkpointer
        self.filters = filters
        self.format = fmt
        self.batch = batch
        self.stats = ExportStats()
        self.through_seq = 0
        self.checkpoint: SignedCheckpoint | None = None
        self._snapshot: Any = None
        self._connection: Connection | None = None

    def open(self) -> AuditExport:
        """Take the snapshot and make sure a checkpoint covers it (before any byte is produced)."""
        self._snapshot = rows.read_snapshot(self.db)
        self._connection = self._snapshot.__enter__()
        try:
            heads = {shard: head for shard, head in rows.heads(self._connection).items() if head[0] > 0}
            self.through_seq = rows.last_seq(self._connection)
            if heads:
                self.checkpoint = self.checkpointer.write(at=heads)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        snapshot, self._snapshot, self._connection = self._snapshot, None, None
        if snapshot is not None:
            snapshot.__exit__(None, None, None)

    def __enter__(self) -> AuditExport:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes, a chunk of rows at a time; stats and SHA-256 are updated as they go."""
        if self._connection is None:
            raise RuntimeError("open the export first")
        if self.db.dialect == "postgresql":
            yield from self._copy(self._connection)
        elif self.format == "csv":
            yield from self._python_csv(self._connection)
        else:
            yield from self._jsonl(self._connection)

    def _jsonl(self, connection: Connection) -> Iterator[bytes]:
        """Each line is the record's canonical JSON (built by the database) with its MAC and the MAC it
        chains from (tracked along a full export, joined for a filtered one) and the names object (built
        by the database too: a JSON encoder call per row cost as much as everything else together). One
        chunk per batch of rows: big enough to amortise the join and the hash update, small enough that
        memory does not depend on the size of the export. SQLite only (PostgreSQL copies, see `_copy`)."""
        full = self.filters.is_empty
        query = _with_names(rows.canonical_query(self.db.dialect, None if full else self.filters,
                                                 through_seq=self.through_seq, with_prev=not full),
                            json_for=self.db.dialect)
        stats = self.stats
        last: dict[int, tuple[int, str]] = {}
        for batch in rows.batches(connection, query, self.batch):
            lines: list[str] = []
            add = lines.append
            if full:
                for _seq, text, mac, shard, place, names in batch:
                    # The record before is the shard's previous row, unless records are missing (damage).
                    before = last.get(shard)
                    prev = before[1] if before is not None and before[0] == place - 1 else rows.mac_at(
                        connection, shard, place - 1)
                    last[shard] = (place, mac)
                    add(f'{text[:-1]},"mac":"{mac}","prev_mac":{_quoted(prev)},"names":{names}}}\n')
            else:
                for _seq, text, mac, _shard, place, prev, names in batch:
                    add(f'{text[:-1]},"mac":"{mac}","prev_mac":{_quoted(prev if place > 1 else "")},'
                        f'"names":{names}}}\n')
            if stats.first_seq is None:
                stats.first_seq = batch[0][0]
            stats.last_seq = batch[-1][0]
            stats.rows += len(batch)
            yield self._emit("".join(lines))

    def _csv_query(self, *, with_prev: bool = True) -> Any:
        """The CSV columns in export order, with the previous MAC joined unless the caller tracks it."""
        e = AuditEvent
        columns = [rows.ts_text(self.db.dialect).label("ts") if name == "ts" else getattr(e, name)
                   for name in CHAINED_FIELDS]
        if self.db.dialect == "postgresql":
            # COPY writes the cells itself, so the database escapes them as `escape_cell` does.
            columns = [column if name in INT_FIELDS or name == "ts" else _escaped_sql(column).label(name)
                       for name, column in zip(CHAINED_FIELDS, columns, strict=True)]
        query = select(*columns, e.mac)
        if with_prev:
            prev, joined = rows.previous_mac()
            query = select(*columns, e.mac, prev.label("prev_mac")).outerjoin(joined, rows.before(joined))
        query = _with_names(query)
        if self.db.dialect == "postgresql":
            names = [_escaped_sql(column).label(name) for column, name
                     in zip(query.selected_columns[-len(NAME_COLUMNS):], NAME_COLUMNS, strict=True)]
            query = query.with_only_columns(*query.selected_columns[:-len(NAME_COLUMNS)], *names,
                                            maintain_column_froms=True)
        query = query.add_columns(e.shard, e.shard_seq)
        return rows.bounded(query, None if self.filters.is_empty else self.filters, 1, self.through_seq)

    def _python_csv(self, connection: Connection) -> Iterator[bytes]:
        """SQLite: along a full export the previous MAC is the previous row's (cheaper than SQLite's
        per-row lookup); a filtered export joins it."""
        full = self.filters.is_empty
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        stats = self.stats
        last: dict[int, tuple[int, str]] = {}
        mac_at = len(CHAINED_FIELDS)
        names_at = mac_at + 1
        for batch in rows.batches(connection, self._csv_query(with_prev=not full), self.batch):
            if full:
                tracked = []
                for row in batch:
                    shard, place = row[-2], row[-1]
                    before = last.get(shard)
                    prev = before[1] if before is not None and before[0] == place - 1 else rows.mac_at(
                        connection, shard, place - 1)
                    last[shard] = (place, row[mac_at])
                    tracked.append((*row[:names_at], prev, *row[names_at:]))
                batch = tracked
            _write_rows(buffer, writer, batch)
            if stats.first_seq is None:
                stats.first_seq = batch[0][0]
            stats.last_seq = batch[-1][0]
            stats.rows += len(batch)
            yield self._emit(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
        if stats.rows == 0:
            yield self._emit(buffer.getvalue())

    def _copy(self, connection: Connection) -> Iterator[bytes]:
        """PostgreSQL writes the file itself (COPY ... TO STDOUT) inside the snapshot; we hash and pass on.

        CSV: NULL is an empty field and an empty string a quoted one (""), a distinction the Python
        writer used for SQLite cannot make; the offline check reads neither. JSON Lines: each row is one
        text column built by the database, copied in CSV mode with a delimiter and a quote character that
        JSON text never contains raw (it escapes every control character), so the lines come out as is.
        """
        e = AuditEvent
        if self.format == "csv":
            query, options = self._csv_query(), "FORMAT csv, HEADER true"
        else:
            prev, joined = rows.previous_mac()
            actor, subject = aliased(User), aliased(User)
            names = rows.json_object_text("postgresql", list(zip(
                NAME_KEYS, (actor.display_name, Customer.name, Document.title, subject.display_name), strict=True)))
            query = (select(rows.export_line("postgresql", prev, names=names)).select_from(e)
                     .outerjoin(joined, rows.before(joined))
                     .outerjoin(actor, actor.id == e.actor_id).outerjoin(Customer, Customer.id == e.customer_id)
                     .outerjoin(Document, Document.id == e.document_id)
                     .outerjoin(subject, subject.id == e.subject_user_id))
            query = rows.bounded(query, None if self.filters.is_empty else self.filters, 1, self.through_seq)
            options = "FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e'"
        compiled = query.compile(dialect=connection.dialect)
        span = connection.execute(rows.bounded(select(func.count(), func.min(e.seq), func.max(e.seq)),
                                               None if self.filters.is_empty else self.filters, 1,
                                               self.through_seq).order_by(None)).one()
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(_NO_MEMO)
            cursor.execute(NO_JIT)
            with cursor.copy(f"COPY ({compiled}) TO STDOUT WITH ({options})", compiled.params) as copy:
                # COPY hands over one row at a time; rows are gathered into chunks of about CHUNK bytes, so
                # that hashing, writing and (over HTTP) sending happen once per chunk, not once per row.
                pending = bytearray()
                for block in copy:
                    pending += block
                    if len(pending) >= CHUNK:
                        yield self._emit(bytes(pending))
                        pending.clear()
                if pending:
                    yield self._emit(bytes(pending))
        finally:
            cursor.close()
        self.stats.rows, self.stats.first_seq, self.stats.last_seq = int(span[0]), span[1], span[2]

    def _emit(self, text: str | bytes) -> bytes:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.stats.digest.update(data)
        return data

    def manifest(self, *, file_name: str, event_seq: int | None) -> dict[str, Any]:
        """The signed description of what was exported; call once `chunks()` is exhausted."""
        checkpoint = None
        if self.checkpoint is not None:
            checkpoint = {**self.checkpoint.to_json(), "object_key": object_key(self.checkpoint.seq)}
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "file": file_name,
            "file_format": self.format,
            "rows": self.stats.rows,
            "first_seq": self.stats.first_seq,
            "last_seq": self.stats.last_seq,
            "sha256": self.stats.digest.hexdigest(),
            "filters": self.filters.describe(),
            "full": self.filters.is_empty,
            "through_seq": self.through_seq,
            "export_event_seq": event_seq,
            "exported_at": format_ts(utcnow()),
            "checkpoint": checkpoint,
            "public_key_fingerprint": self.checkpointer.fingerprint,
            "names": {"columns": list(NAME_COLUMNS) if self.format == "csv" else ["names." + k for k in NAME_KEYS],
                      "note": "current names beside the recorded ids, read at export time; outside the MACs, "
                              "covered by sha256"},
        }
        manifest["signature"] = self.checkpointer.sign(manifest_message(manifest))
        return manifest


def _escaped_sql(column: Any) -> Any:
    """`escape_cell` in SQL, for the text columns PostgreSQL's COPY writes.

    One search of the first character among the formula starts: seven comparisons per cell cost as much
    as everything else the CSV export asks of the database. An empty cell is never escaped (`strpos`
    finds the empty string at 1), and a NULL stays NULL.
    """
    starts = func.strpos(literal("".join(FORMULA_STARTS)), func.left(column, 1))
    return case(((starts > 0) & (column != literal("")), literal(ESCAPE) + column), else_=column)


def _write_rows(buffer: io.StringIO, writer: Any, batch: Any) -> None:
    """Write a batch of rows, escaped: all at once when no cell can need it, else row by row.

    Nearly every batch has no cell that starts like a formula and no carriage return, so the writer
    takes the whole batch in one call, and a search of its text confirms that nothing in it needed
    escaping: a cell that starts with one of `FORMULA_STARTS` shows as that character right after a
    separator or a line feed, perhaps after the quote that opens a quoted cell, and a carriage return
    anywhere is data (the line terminator is "\n"). A match (some are false alarms, a minus sign after
    a comma inside a quoted JSON cell, say) only sends the batch down the careful path.
    """
    start = buffer.tell()
    writer.writerows(batch)
    # A line feed in front: the batch's first cell starts a line too.
    if not _needs_care("\n" + buffer.getvalue()[start:]):
        return
    buffer.seek(start)
    buffer.truncate()
    _write_rows_carefully(buffer, writer, batch)


def _needs_care(text: str) -> bool:
    """Whether CSV text may hold a cell that `escape_cell` changes, or a carriage return.

    Searching single characters is what `str` does fastest, so the characters that almost never occur
    are looked for first and the precise pattern runs only when one does; the minus sign, common inside
    cells (times, versions), is looked for only where a cell starts."""
    if "\r" in text:
        return True
    if any(start in text for start in _RARE_STARTS):
        return _FORMULA_CELL.search(text) is not None
    return any(start in text for start in _MINUS_CELLS)


def _write_rows_carefully(buffer: io.StringIO, writer: Any, batch: Any) -> None:
    """Write escaped rows. Python 3.11's writer quotes a cell holding a line feed but not one holding a
    lone carriage return, which a reader then takes for a line break; such rare rows are written with
    "\r\n" as terminator (so the writer quotes them) and the terminator turned back into "\n"."""
    cr_writer = None
    for row in batch:
        cells = [escape_cell(value) for value in row]
        if any(isinstance(cell, str) and "\r" in cell for cell in cells):
            cr_writer = cr_writer or csv.writer(cr_buffer := io.StringIO(), lineterminator="\r\n")
            cr_writer.writerow(cells)
            buffer.write(cr_buffer.getvalue()[:-2] + "\n")
            cr_buffer.seek(0)
            cr_buffer.truncate()
        else:
            writer.writerow(cells)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def save_manifest(store: ObjectStore, event_seq: int, manifest: dict[str, Any]) -> str:
    """Keep the manifest of a download in the store, where the desk and the API serve it from."""
    key = manifest_key(event_seq)
    data = manifest_bytes(manifest)
    store.put(key, io.BytesIO(data), length=len(data), content_type="application/json")
    return key


def load_manifest(store: ObjectStore, event_seq: int) -> bytes | None:
    try:
        with store.open(manifest_key(event_seq)) as handle:
            return handle.read()
    except ObjectNotFound:
        return None
