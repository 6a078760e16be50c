"""Reading the log in bulk: one consistent snapshot, raw rows in canonical column order, streamed.

Verification and export walk millions of rows, so they read through a server-side cursor (PostgreSQL)
or a lazily stepped cursor (SQLite) in fixed-size batches, never holding more than one batch; and they
read inside one snapshot so the chain head, the checkpoint rows and the records agree with each other
even while workers keep appending. On SQLite the snapshot is a deferred transaction, which does not
block writers in WAL mode; on PostgreSQL it is a REPEATABLE READ, READ ONLY transaction.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, String, Text, case, cast, func, literal_column, select, type_coerce
from sqlalchemy.orm import Session, aliased

from vault.audit.chain import INT_FIELDS, ROW_COLUMNS
from vault.audit.filters import AuditFilter
from vault.db.engine import READ_SNAPSHOT, Database
from vault.models import AuditEvent, AuditHead

BATCH = 1000
# Indexes in a chain row: the ROW_COLUMNS, then the stored MAC, the shard and the place in it.
MAC = len(ROW_COLUMNS)
SHARD = MAC + 1
SHARD_SEQ = MAC + 2
SEQ = ROW_COLUMNS.index("seq")


# What PostgreSQL's pg_export_snapshot() returns (e.g. "00000003-0000001B-1"): checked before it is
# written into SET TRANSACTION SNAPSHOT, which takes no bound parameters.
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


@contextmanager
def read_snapshot(db: Database, *, snapshot: str | None = None) -> Iterator[Connection]:
    """A read-only transaction with one consistent view of the data, rolled back at the end.

    `snapshot` (PostgreSQL only) is a snapshot another transaction exported (`export_snapshot`): this
    one then sees exactly what that one sees, as long as that one stays open.
    """
    options: dict[str, Any] = {READ_SNAPSHOT: True}
    if db.dialect == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with db.engine.connect() as connection:
        connection.execution_options(**options)
        transaction = connection.begin()
        try:
            if snapshot is not None:
                if db.dialect != "postgresql" or not _SNAPSHOT_ID.fullmatch(snapshot):
                    raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
                # Must be the transaction's first statement.
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            yield connection
        finally:
            transaction.rollback()


def export_snapshot(connection: Connection) -> str | None:
    """The id of this read transaction's snapshot, for other sessions to share (PostgreSQL; None on SQLite,
    which has no such thing). Valid while this transaction stays open."""
    if connection.dialect.name != "postgresql":
        return None
    return str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())


def ts_text(dialect: str) -> Any:
    """The record time as canonical text, computed by the database (no datetime object per row)."""
    e = AuditEvent
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", e.ts), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, always six fraction digits).
    return func.replace(type_coerce(e.ts, String), " ", "T") + "Z"


def _sql_string(text: str) -> Any:
    """A constant piece of the canonical text (our own key names: no quoting hazards)."""
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def _json_value(dialect: str, column: Any, *, integer: bool) -> Any:
    if dialect == "postgresql":
        # to_json escapes exactly as Python's json module does (checked for every code point).
        return func.coalesce(cast(column if integer else func.to_json(column), Text), _sql_string("null"))
    return func.json_quote(column)  # SQLite: "null" for NULL, the same escaping as well


def json_object_text(dialect: str, pairs: list[tuple[str, Any]]) -> Any:
    """A compact JSON object of text columns (`{"key":"value",...}`, null for NULL), the same bytes on
    both databases: SQLite's `json_object`; on PostgreSQL each value through `to_json` (as the canonical
    text escapes), joined once. PostgreSQL's own `json_build_object` writes `"key" : value` and costs
    more per row than the pieces do.
    """
    if dialect == "sqlite":
        return func.json_object(*[part for key, column in pairs for part in (_sql_string(key), column)], type_=Text)
    parts: list[Any] = []
    for i, (key, column) in enumerate(pairs):
        parts += [_sql_string(("{" if i == 0 else ",") + json.dumps(key) + ":"),
                  _json_value(dialect, column, integer=False)]
    return _joined(dialect, [*parts, _sql_string("}")])


def _canonical_parts(dialect: str) -> list[Any]:
    """The pieces of the canonical JSON text of a record, all but the closing brace."""
    e = AuditEvent
    parts: list[Any] = []
    for i, name in enumerate(ROW_COLUMNS):
        parts.append(_sql_string(("{" if i == 0 else ",") + f'"{name}":'))
        if name == "seq":
            # A sharded record's place follows its number (see chain.py); shard 0 keeps the old form.
            parts += [cast(e.seq, Text), case((e.shard == 0, _sql_string("")), else_=_concat([
                _sql_string(',"shard":'), cast(e.shard, Text), _sql_string(',"shard_seq":'),
                cast(e.shard_seq, Text)]))]
        elif name == "ts":
            parts += [_sql_string('"'), ts_text(dialect), _sql_string('"')]
        elif name == "detail":
            parts.append(func.coalesce(func.nullif(e.detail, ""), _sql_string("{}")))
        else:
            parts.append(_json_value(dialect, getattr(e, name), integer=name in INT_FIELDS))
    return parts


def _concat(parts: list[Any]) -> Any:
    text = parts[0]
    for part in parts[1:]:
        text = text.op("||", return_type=Text)(part)
    return text


def _joined(dialect: str, parts: list[Any]) -> Any:
    """Pieces that are never NULL, joined into one text: on PostgreSQL by one call of `concat`, which
    builds the text once, where a chain of `||` copies the growing text again at every piece."""
    if dialect == "postgresql":
        return func.concat(*parts, type_=Text)
    return _concat(parts)


def canonical_text(dialect: str) -> Any:
    """The canonical JSON text of each record, built by the database itself.

    The same bytes as `chain.canonical_row_text`, produced in C by the database (and, on PostgreSQL,
    on the other core): verification then only hashes. It is a shortcut, never the judge: a record
    whose MAC fails through it is checked again with the Python encoder before it is called damaged.
    """
    if dialect == "sqlite":
        return _sqlite_canonical().label("canonical")
    return _joined(dialect, [*_canonical_parts(dialect), _sql_string("}")]).label("canonical")


# The canonical keys before and after "detail", which SQLite's `json_object` cannot take as stored text.
_BEFORE_DETAIL = ROW_COLUMNS[:ROW_COLUMNS.index("detail")]
_AFTER_DETAIL = ROW_COLUMNS[ROW_COLUMNS.index("detail") + 1:]


def _sqlite_object(names: tuple[str, ...], *, place: bool) -> Any:
    """SQLite's `json_object` over the named columns in the order given (keys as constants); with
    `place`, a sharded record's "shard" and "shard_seq" right after "seq"."""
    e = AuditEvent
    pairs: list[Any] = []
    for name in names:
        pairs += [_sql_string(name), ts_text("sqlite") if name == "ts" else getattr(e, name)]
        if name == "seq" and place:
            pairs += [_sql_string("shard"), e.shard, _sql_string("shard_seq"), e.shard_seq]
    return func.json_object(*pairs, type_=Text)


def _sqlite_canonical() -> Any:
    """The canonical text on SQLite: two `json_object` calls with the stored `detail` between them.

    One C call per half escapes and joins the fields (with the escaper `json_quote` uses), nearly twice
    as fast as quoting and concatenating nineteen fields one by one, which verification and export pay
    per record. `detail` goes in as stored, never re-encoded, so a cosmetic change to it still breaks its
    MAC. Records of shard 0 keep the form they were MAC'd in, without their place.
    """
    e = AuditEvent
    head = _sqlite_object(_BEFORE_DETAIL, place=False)
    tail = case((e.shard == 0, _sqlite_object(_AFTER_DETAIL, place=False)),
                else_=_sqlite_object(_AFTER_DETAIL, place=True))
    # Each half's own brace trimmed: the character next to it closes or opens a value, never a brace.
    return _concat([func.rtrim(head, _sql_string("}")), _sql_string(',"detail":'),
                    func.coalesce(func.nullif(e.detail, ""), _sql_string("{}")), _sql_string(","),
                    func.ltrim(tail, _sql_string("{"))])


def export_line(dialect: str, prev: Any, *, names: Any = None) -> Any:
    """A JSON Lines export row built by the database: the canonical record plus `mac` and `prev_mac`,
    and `names` (a JSON object text) when given."""
    quoted_prev = func.coalesce(_concat([_sql_string('"'), prev, _sql_string('"')]), _sql_string("null"))
    tail = [] if names is None else [_sql_string(',"names":'), names]
    return _joined(dialect, [*_canonical_parts(dialect), _sql_string(',"mac":"'), AuditEvent.mac,
                    _sql_string('","prev_mac":'), quoted_prev, *tail, _sql_string("}")]).label("line")


def before(joined: Any) -> Any:
    """The join condition for the record `joined` chains after: the one before it in its shard."""
    return (joined.shard == AuditEvent.shard) & (joined.shard_seq == AuditEvent.shard_seq - 1)


def previous_mac() -> tuple[Any, Any]:
    """The MAC each exported record chains from ("" for the first of its shard), and the table to join.

    The record before is looked up by its place (shard_seq - 1 in the same shard), not taken from a
    previous row, so a missing record shows as a null rather than as a wrong MAC. On PostgreSQL this
    join is cheaper than a window function over the same rows.
    """
    joined = aliased(AuditEvent)
    return case((AuditEvent.shard_seq == 1, _sql_string("")), else_=joined.mac), joined


def canonical_query(dialect: str, filters: AuditFilter | None = None, *, from_seq: int = 1,
                    through_seq: int | None = None, with_prev: bool = False) -> Select[Any]:
    """(seq, canonical text, mac, shard, shard_seq[, previous mac]) in global order."""
    e = AuditEvent
    columns = [e.seq, canonical_text(dialect), e.mac, e.shard, e.shard_seq]
    query = select(*columns)
    if with_prev:
        joined = aliased(AuditEvent)
        query = select(*columns, joined.mac).outerjoin(joined, before(joined))
    return bounded(query, filters, from_seq, through_seq)


def shard_canonical_query(dialect: str, shard: int, from_shard_seq: int = 1) -> Select[Any]:
    """(shard_seq, canonical text, mac, seq) of one shard's chain, in chain order."""
    e = AuditEvent
    return (select(e.shard_seq, canonical_text(dialect), e.mac, e.seq)
            .where(e.shard == shard, e.shard_seq >= from_shard_seq).order_by(e.shard_seq))


def chain_columns(dialect: str) -> list[Any]:
    e = AuditEvent
    return [ts_text(dialect) if name == "ts" else getattr(e, name) for name in ROW_COLUMNS] + [
        e.mac, e.shard, e.shard_seq]


def chain_query(dialect: str, filters: AuditFilter | None = None, *, from_seq: int = 1,
                through_seq: int | None = None, with_prev: bool = False) -> Select[Any]:
    """Rows in global order; `with_prev` adds the MAC the record chains from (for filtered exports)."""
    columns = chain_columns(dialect)
    query = select(*columns)
    if with_prev:
        joined = aliased(AuditEvent)
        query = select(*columns, joined.mac).outerjoin(joined, before(joined))
    return bounded(query, filters, from_seq, through_seq)


def shard_chain_query(dialect: str, shard: int, from_shard_seq: int = 1) -> Select[Any]:
    """Full rows (see `chain_columns`) of one shard's chain from a place on, in chain order."""
    e = AuditEvent
    return (select(*chain_columns(dialect)).where(e.shard == shard, e.shard_seq >= from_shard_seq)
            .order_by(e.shard_seq))


def bounded(query: Select[Any], filters: AuditFilter | None, from_seq: int, through_seq: int | None) -> Select[Any]:
    e = AuditEvent
    if from_seq > 1:
        query = query.where(e.seq >= from_seq)
    if through_seq is not None:
        query = query.where(e.seq <= through_seq)
    if filters is not None:
        query = query.where(*filters.conditions())
    return query.order_by(e.seq)


def stream(connection: Connection, query: Select[Any], batch: int = BATCH) -> Iterator[tuple[Any, ...]]:
    """The query's rows as plain tuples, fetched `batch` at a time (see `batches`)."""
    for chunk in batches(connection, query, batch):
        yield from chunk


def batches(connection: Connection, query: Select[Any], batch: int = BATCH) -> Iterator[list[tuple[Any, ...]]]:
    """The query's rows in lists of at most `batch` plain tuples, through a streaming cursor.

    SQLAlchemy compiles the query, but the rows are fetched from the DBAPI cursor directly: building
    a Row object per record costs as much as fetching it, and every column here is already a plain
    int or str (times are formatted by the database), so there is nothing for result processing to do.
    PostgreSQL gets a named (server-side) cursor, so only one batch is ever held in memory.
    """
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect)
    raw = connection.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the connection is closed")
    if dialect.name == "postgresql":
        params: Any = {name: _raw_value(value, dialect.name) for name, value in compiled.params.items()}
        cursor = raw.cursor(name=f"audit_{uuid.uuid4().hex[:16]}")
        cursor.itersize = batch
    else:
        params = tuple(_raw_value(compiled.params[name], dialect.name) for name in compiled.positiontup or ())
        cursor = raw.cursor()
    try:
        cursor.execute(str(compiled), params)
        while chunk := cursor.fetchmany(batch):
            yield chunk
    finally:
        cursor.close()


def read_ahead(connection: Connection, query: Select[Any], batch: int = BATCH) -> Iterator[list[tuple[Any, ...]]]:
    """`batches`, fetched by a helper thread up to two batches ahead of the caller.

    The database (PostgreSQL's server process building the canonical text, or SQLite stepping its
    cursor, which the driver does without holding the interpreter lock) then works while the caller
    hashes the batch before: on a machine with a core to spare, a one-pass read costs about the larger
    of the two instead of their sum. Memory stays bounded (three batches at most).

    The caller must not use `connection` until the iteration ends: the helper thread holds it. Closing
    the iterator early stops the helper and waits for it, so the cursor is closed when this returns.
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()
    source = batches(connection, query, batch)

    def offer(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in source:
                if not offer((True, chunk)):
                    break
            else:
                offer((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            offer((False, exc))
        finally:
            source.close()

    helper = threading.Thread(target=produce, name="audit-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        helper.join()


def _raw_value(value: Any, dialect: str) -> Any:
    """Bind values as the column types would have sent them (only times need converting)."""
    if isinstance(value, datetime) and dialect == "sqlite":
        # The stored form of UTCDateTime on SQLite: naive UTC text, compared as text.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def head_state(connection: Connection | Session) -> tuple[int, str]:
    """(records in all chains, SHA-256 of every head): one value that names the whole log's state, for a
    backup's manifest or a report to cite; it changes with any append and with any head row changed."""
    found = sorted((int(shard), int(seq), mac) for shard, seq, mac
                   in connection.execute(select(AuditHead.id, AuditHead.seq, AuditHead.mac)) if seq > 0)
    text = json.dumps([list(head) for head in found], separators=(",", ":"))
    return sum(seq for _shard, seq, _mac in found), hashlib.sha256(text.encode("ascii")).hexdigest() if found else ""


def heads(connection: Connection) -> dict[int, tuple[int, str]]:
    """{shard: (shard_seq, mac)} of every shard's head row."""
    return {int(shard): (int(seq), mac) for shard, seq, mac
            in connection.execute(select(AuditHead.id, AuditHead.seq, AuditHead.mac))}


def shards(connection: Connection) -> set[int]:
    """The shards that hold records (whether or not their head row says so)."""
    return {int(shard) for shard in connection.execute(select(AuditEvent.shard).distinct()).scalars()}


def mac_at(connection: Connection, shard: int, shard_seq: int) -> str | None:
    """The stored MAC of one record ("" before the first: every chain's starting value)."""
    if shard_seq <= 0:
        return ""
    return connection.execute(select(AuditEvent.mac).where(
        AuditEvent.shard == shard, AuditEvent.shard_seq == shard_seq)).scalar_one_or_none()


def last_seq(connection: Connection) -> int:
    """The highest record number in the snapshot (0 for an empty log)."""
    return int(connection.execute(select(func.coalesce(func.max(AuditEvent.seq), 0))).scalar_one())
