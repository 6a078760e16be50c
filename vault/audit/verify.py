"""Recompute the chains and check them against their checkpoints; name the first damage and its kind.

Each shard's chain is walked on its own, in the order of its places (`shard_seq`); damage is named by
shard, place and record number, and the first damage of the log is the one with the lowest record
number. Kinds of damage, told apart by what still chains (MACs cover the place in the chain, so a moved
record only verifies at its original place; "number" below is that place):

- deleted: a gap in the sequence numbers, or, if the later records were renumbered to close it, the
  record after the damaged one chains from it only at its old (one higher) number;
- modified: a record's MAC does not match its content but the next record chains from the stored MAC
  (the MAC is genuine, the content changed); at the end of the chain the head row is the witness;
- inserted: a record that chains from nothing, while a later record chains from the one before it once
  renumbered back (the later records were shifted to make room); at the end, a record beyond the head;
- reordered: a later record chains here when given this sequence number, and this one chains at the
  later record's place: the two were swapped;
- truncated: the chain ends before the head row's sequence or before the last signed checkpoint in the
  store ("records after seq S are missing": the head row alone is not trusted, since whoever deletes the
  newest records can reset it to match);
- checkpoint: a stored checkpoint whose signature is invalid or that the store lost.

Someone holding the audit key can recompute every MAC after a change; the signed checkpoints, kept
write-once outside the database, still catch that: the record at a checkpoint's sequence then no longer
carries the signed MAC. Changes after the last checkpoint are beyond what any checkpoint can vouch for,
which is why a checkpoint is written every N records, at least every M minutes (by maintenance, even when
the log is idle), and by every verification that finds the chain intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import Connection, func, select

from vault.audit import one_pass, range_workers, rows
from vault.audit.chain import mac_function, row_mac
from vault.audit.checkpoints import Checkpointer, CheckpointError, SignedCheckpoint
from vault.db.engine import Database
from vault.models import AuditCheckpoint, AuditEvent

KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "checkpoint")
# How far ahead to look for the partner of a swapped record; swaps further apart read as "modified".
REORDER_WINDOW = 1000


@dataclass(frozen=True)
class Damage:
    seq: int  # the record number (for a missing record: the number after the last intact one before it)
    kind: str
    message: str
    shard: int = 0
    shard_seq: int = 0


@dataclass
class VerifyReport:
    from_seq: int
    checked: int = 0
    last_seq: int = 0
    head_seq: int | None = None
    # {shard: (shard_seq, mac)} of the last record verified (or trusted) in each shard: what a
    # verification that found no damage signs.
    last_heads: dict[int, tuple[int, str]] = field(default_factory=dict)
    shards: int = 0
    checkpoints: int = 0
    damage: list[Damage] = field(default_factory=list)
    seconds: float = 0.0
    # How many processes the one-pass check ran in (how it was done, like `seconds`; not what was found).
    processes: int = 1

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def first(self) -> Damage | None:
        return min(self.damage, key=lambda d: (d.seq, KINDS.index(d.kind))) if self.damage else None

    def summary(self) -> str:
        if self.ok:
            return (f"audit log intact: {self.checked} records verified (seq {self.from_seq}..{self.last_seq}), "
                    f"{self.checkpoints} checkpoint(s) verified, {self.shards} chain(s)")
        first = self.first
        assert first is not None
        return f"audit log DAMAGED: first bad seq {first.seq}: {first.kind}: {first.message}"

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {"ok": self.ok, "from_seq": self.from_seq, "checked": self.checked, "last_seq": self.last_seq,
                "head_seq": self.head_seq, "checkpoints": self.checkpoints,
                "first_bad_seq": first.seq if first else None, "kind": first.kind if first else None,
                "first_bad_shard": first.shard if first else None,
                "first_bad_shard_seq": first.shard_seq if first else None,
                "message": first.message if first else None,
                "damage": [asdict(d) for d in sorted(self.damage, key=lambda d: d.seq)],
                "seconds": round(self.seconds, 3)}


class _Peekable:
    def __init__(self, source: Iterator[Any]) -> None:
        self._source = source
        self._ahead: list[Any] = []

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> Any:
        if self._ahead:
            return self._ahead.pop(0)
        return next(self._source)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def peek(self, n: int) -> list[Any]:
        """Up to `n` upcoming rows, without consuming them."""
        if len(self._ahead) < n:
            self._ahead.extend(islice(self._source, n - len(self._ahead)))
        return self._ahead[:n]


def verify_chain(
    db: Database,
    key: bytes,
    checkpointer: Checkpointer,
    *,
    from_seq: int = 1,
    progress: Callable[[int], None] | None = None,
    jobs: int = 1,
    min_records: int | None = None,
) -> VerifyReport:
    """Verify records numbered `from_seq` on, shard by shard (trusting, in each shard, the stored MAC of
    the record before the first one verified).

    Checkpoints are listed from the store *before* the database snapshot is taken: a checkpoint is
    only ever written after the records it covers are committed, so every one listed must be inside
    the snapshot, and one missing from it is a truncation, not a race.

    With `jobs` > 1 and at least `min_records` (default `range_workers.MIN_RECORDS`) records per job,
    the one-pass check runs in that many worker processes, one range of record numbers each
    (`vault.audit.range_workers`); the report is the same. Only for a person's deliberate run (the
    command line, a restore): it forks, which a web worker must not.
    """
    started = time.perf_counter()
    from_seq = max(1, from_seq)
    report = VerifyReport(from_seq=from_seq, last_seq=from_seq - 1)
    signed: dict[int, SignedCheckpoint] = {}
    for item in checkpointer.stored_checkpoints():
        if isinstance(item, CheckpointError):
            report.damage.append(Damage(item.seq or from_seq, "checkpoint", str(item)))
        elif not item.verify(checkpointer.public_key):
            report.damage.append(Damage(item.seq, "checkpoint", f"checkpoint {item.seq} has an invalid signature"))
        else:
            signed[item.seq] = item
    with rows.read_snapshot(db) as connection:
        heads = rows.heads(connection)
        report.head_seq = rows.last_seq(connection)
        for row in connection.execute(select(AuditCheckpoint.seq)):
            if row.seq in signed or any(d.seq == row.seq and d.kind == "checkpoint" for d in report.damage):
                continue
            # Stored after our listing (the object goes to the store before its row is committed)?
            late = checkpointer.stored_checkpoint(row.seq)
            if late is None:
                report.damage.append(Damage(row.seq, "checkpoint",
                                            f"checkpoint {row.seq} is recorded but missing from the object store"))
            elif isinstance(late, CheckpointError) or not late.verify(checkpointer.public_key):
                report.damage.append(Damage(row.seq, "checkpoint", f"checkpoint {row.seq} is unreadable or forged"))
            else:
                signed[row.seq] = late
        # What the checkpoints vouch for, per shard: {shard_seq: (mac, checkpoint name)}.
        vouched: dict[int, dict[int, tuple[str, int]]] = {}
        for name, checkpoint in sorted(signed.items()):
            for shard, (shard_seq, mac) in checkpoint.heads.items():
                vouched.setdefault(shard, {})[shard_seq] = (mac, name)
        started_heads = {shard for shard, head in heads.items() if head[0] > 0}
        starts: dict[int, tuple[int, str]] = {}
        for shard in sorted(rows.shards(connection) | started_heads | set(vouched)):
            begin = _start(report, connection, shard)
            if begin is not None:
                starts[shard] = begin
        # One pass in record order over every chain at once (what the database reads fastest), split over
        # worker processes if asked; a chain in which anything does not fit is walked again on its own,
        # which is where damage is classified.
        ranges = range_workers.split(from_seq, report.head_seq, jobs,
                                     range_workers.MIN_RECORDS if min_records is None else min_records)
        if not range_workers.shareable(db):
            ranges = []
        odd = _in_workers(report, key, db, connection, ranges, starts, vouched, heads, progress) if ranges else None
        if odd is None:
            odd = _all_chains(report, key, connection, db.dialect, starts, vouched, heads, progress)
        for shard in odd:
            _walk(report, key, connection, db.dialect, shard, *starts[shard], vouched.get(shard, {}),
                  heads.get(shard), None)
    report.checkpoints = len(signed)
    report.seconds = time.perf_counter() - started
    return report


def _all_chains(report: VerifyReport, key: bytes, connection: Connection, dialect: str,
                starts: dict[int, tuple[int, str]], vouched: dict[int, dict[int, tuple[str, int]]],
                heads: dict[int, tuple[int, str]], progress: Callable[[int], None] | None) -> list[int]:
    """Verify every chain in one pass in record order (`one_pass.fit`); returns the chains that need a
    walk of their own."""
    state = {shard: [start, previous, report.from_seq - 1, vouched.get(shard) or {}]
             for shard, (start, previous) in starts.items()}
    odd: set[int] = set()
    one_pass.fit(rows.read_ahead(connection, rows.canonical_query(dialect, from_seq=report.from_seq)), key, state,
                 odd, progress)
    return _finish(report, starts, {shard: (chain[0], chain[1], chain[2]) for shard, chain in state.items()},
                   vouched, heads)


def _in_workers(report: VerifyReport, key: bytes, db: Database, connection: Connection,
                ranges: list[tuple[int, int]], starts: dict[int, tuple[int, str]],
                vouched: dict[int, dict[int, tuple[str, int]]], heads: dict[int, tuple[int, str]],
                progress: Callable[[int], None] | None) -> list[int] | None:
    """`_all_chains` over `ranges` in worker processes, their pieces stitched together; None when a
    worker failed (the caller then runs the one pass itself, in the same snapshot)."""
    snapshot = rows.export_snapshot(connection)
    tasks = [range_workers.Task(index, db.url, key, report.from_seq, first, last, starts, vouched, snapshot)
             for index, (first, last) in enumerate(ranges)]
    pieces = range_workers.run(tasks, progress)
    if pieces is None:
        return None
    report.processes = len(tasks)
    return _finish(report, starts, range_workers.stitch(starts, pieces, report.from_seq), vouched, heads)


def _finish(report: VerifyReport, starts: dict[int, tuple[int, str]], ends: dict[int, tuple[int, str, int]],
            vouched: dict[int, dict[int, tuple[str, int]]], heads: dict[int, tuple[int, str]]) -> list[int]:
    """Count the chains that fit all the way (`ends`: {shard: (next place, last MAC, last record number)})
    and check where they end; returns the others, for the careful walk."""
    for shard, (start, _previous) in starts.items():
        if shard not in ends:
            continue
        expected, previous, last_number = ends[shard]
        checked = expected - start
        report.checked += checked
        if checked:
            report.last_seq = max(report.last_seq, last_number)
            report.last_heads[shard] = (expected - 1, previous)
        _ends(report, shard, start, expected, last_number, previous, vouched.get(shard, {}), heads.get(shard))
    return sorted(shard for shard in starts if shard not in ends)


def _start(report: VerifyReport, connection: Connection, shard: int) -> tuple[int, str] | None:
    """Where verification starts in a chain: its first record numbered `from_seq` or later, and the stored
    MAC of the record before it (trusted); None, with the damage reported, when that record is missing."""
    e = AuditEvent
    start = 1
    if report.from_seq > 1:
        first = connection.execute(select(func.min(e.shard_seq)).where(
            e.shard == shard, e.seq >= report.from_seq)).scalar_one()
        if first is None:
            last = connection.execute(select(func.max(e.shard_seq)).where(e.shard == shard)).scalar_one()
            first = (last or 0) + 1
        start = int(first)
    previous = rows.mac_at(connection, shard, start - 1)
    if previous is None:
        report.damage.append(Damage(report.from_seq, "deleted", (
            f"shard {shard}: record #{start - 1}, before the first one verified, is missing"), shard, start - 1))
        return None
    report.shards += 1
    if start > 1:
        report.last_heads[shard] = (start - 1, previous)
    return start, previous


def _walk(report: VerifyReport, key: bytes, connection: Connection, dialect: str, shard: int, start: int,
          previous: str, vouched: dict[int, tuple[str, int]], head: tuple[int, str] | None,
          progress: Callable[[int], None] | None) -> None:
    """Walk one chain in its own order, record by record: the careful path that names damage."""
    expected = start
    last_checkpoint = start - 1
    last_number = report.from_seq - 1
    mac_of = mac_function(key)
    where = f"shard {shard}: "
    # The loop below runs once per record: the report is brought up to date after it, not per row.
    try:
        for shard_seq, text, mac, seq in _walk_rows(connection, dialect, shard, start, progress):
            if shard_seq != expected:
                span = f"#{expected}" if shard_seq == expected + 1 else f"#{expected} to #{shard_seq - 1}"
                report.damage.append(Damage(last_number + 1, "deleted", where + f"record(s) {span} are missing "
                                            f"(between seq {last_number} and {seq})", shard, expected))
                return
            if mac_of((text + previous).encode("utf-8")) != mac or shard_seq in vouched:
                last_checkpoint = _check_row(report, key, connection, dialect, shard, shard_seq, seq, text, mac,
                                             previous, vouched, head, last_checkpoint)
                if last_checkpoint < 0:
                    return
            previous = mac
            expected += 1
            last_number = seq
    finally:
        checked = expected - start
        report.checked += checked
        if checked:
            report.last_seq = max(report.last_seq, last_number)
            report.last_heads[shard] = (expected - 1, previous)
    _ends(report, shard, start, expected, last_number, previous, vouched, head)


def _walk_rows(connection: Connection, dialect: str, shard: int, start: int,
               progress: Callable[[int], None] | None) -> Iterator[tuple[Any, ...]]:
    """The shard's rows from `start` on, batch by batch, reporting progress per batch."""
    for batch in rows.batches(connection, rows.shard_canonical_query(dialect, shard, start)):
        yield from batch
        if progress is not None:
            progress(len(batch))


def _check_row(report: VerifyReport, key: bytes, connection: Connection, dialect: str, shard: int, shard_seq: int,
               seq: int, text: str, mac: str, previous: str, vouched: dict[int, tuple[str, int]],
               head: tuple[int, str] | None, last_checkpoint: int) -> int:
    """The slow path of one record: a MAC the database's encoding did not confirm, or a checkpointed place.
    Returns the place of the last checkpoint passed, or -1 when damage was found and reported."""
    where = f"shard {shard}: "
    if mac_function(key)((text + previous).encode("utf-8")) != mac:
        # The database's encoding is a shortcut; the Python encoder has the last word, and the
        # full rows are what the damage is classified from.
        full = _Peekable(rows.stream(connection, rows.shard_chain_query(dialect, shard, shard_seq)))
        row = next(full)
        if _mac(key, row, previous) != mac:
            report.damage.append(_classify(key, row, previous, full, head))
            return -1
        full.close()
    signed = vouched.get(shard_seq)
    if signed is not None:
        if signed[0] != mac:
            report.damage.append(Damage(seq, "modified", where + (
                f"the chain was recomputed: record #{shard_seq} (seq {seq}) no longer carries the MAC signed "
                f"in checkpoint {signed[1]} (the change lies between #{last_checkpoint + 1} and #{shard_seq})"),
                shard, shard_seq))
            return -1
        return shard_seq
    return last_checkpoint


def _ends(report: VerifyReport, shard: int, start: int, expected: int, last_number: int, previous: str,
          vouched: dict[int, tuple[str, int]], head: tuple[int, str] | None) -> None:
    """Where the chain ends against its head row and the places the write-once checkpoints vouch for."""
    where = f"shard {shard}: "
    last = expected - 1
    if head is not None and head[0] > last:
        report.damage.append(Damage(last_number + 1, "truncated", where + (
            f"the chain ends at #{last} (seq {last_number}) but its head says #{head[0]}"), shard, last + 1))
    elif head is not None and head[0] < last:
        report.damage.append(Damage(last_number, "inserted", where + (
            f"records #{head[0] + 1} to #{last} lie beyond the chain head (#{head[0]})"), shard, head[0] + 1))
    elif head is None and last >= 1:
        report.damage.append(Damage(last_number, "inserted", where + "records lie in a shard that has no head",
                                    shard, last))
    elif head is not None and last >= start and head[1] != previous:
        report.damage.append(Damage(last_number, "modified",
                                    where + f"the chain head disagrees with record #{last}'s MAC", shard, last))
    beyond = [place for place in vouched if place > last]
    if beyond:
        # The head row is the attacker's to reset; the write-once store is not.
        report.damage.append(Damage(last_number + 1, "truncated", where + (
            f"records after #{last} (seq {last_number}) are missing (the write-once store holds a checkpoint of "
            f"#{max(beyond)}; the database's chain ends at #{last})"), shard, last + 1))


def _mac(key: bytes, row: Any, previous: str) -> str:
    """MAC of a full chain row at its own place."""
    return row_mac(key, row, previous)


def _fits(key: bytes, row: Any, previous: str, place: int) -> bool:
    """Whether `row` chains from `previous` when put back at `place` in its shard (to test a renumbering).

    Whoever renumbers records in a shard may or may not shift their record numbers along with their
    places; both are tried.
    """
    shard, own = row[rows.SHARD], row[rows.SHARD_SEQ]
    if not shard:
        return row_mac(key, row, previous, place) == row[rows.MAC]
    if row_mac(key, row, previous, shard=shard, shard_seq=place) == row[rows.MAC]:
        return True
    shifted = (*row[:rows.SEQ], row[rows.SEQ] + place - own, *row[rows.SEQ + 1:])
    return row_mac(key, shifted, previous, shard=shard, shard_seq=place) == row[rows.MAC]


def _place(row: Any) -> int:
    return row[rows.SHARD_SEQ]


def _classify(key: bytes, row: Any, previous: str, stream: _Peekable, head: tuple[int, str] | None) -> Damage:
    """Why does `row` (at the expected place in its shard) not chain from `previous`?"""
    seq, mac, shard, place = row[rows.SEQ], row[rows.MAC], row[rows.SHARD], _place(row)
    where = f"shard {shard}: "

    def damage(kind: str, message: str) -> Damage:
        return Damage(seq, kind, where + message, shard, place)

    ahead = stream.peek(1)
    following = ahead[0] if ahead else None
    if following is not None:
        f_place, f_mac = _place(following), following[rows.MAC]
        if f_place == place + 1 and _mac(key, following, mac) == f_mac:
            return damage("modified", f"record #{place} (seq {seq}) does not match its MAC; "
                                      "the next record still chains from it")
        if _fits(key, following, mac, f_place + 1):
            return damage("deleted",
                          f"a record before #{f_place + 1} was deleted and the later records renumbered down")
        window = stream.peek(REORDER_WINDOW)
        for j, candidate in enumerate(window):
            if not _fits(key, candidate, previous, place):
                continue
            c_place = _place(candidate)
            before = candidate if j == 0 else window[j - 1]
            if _fits(key, row, before[rows.MAC], c_place):
                return damage("reordered", f"records #{place} (seq {seq}) and #{c_place} (seq {candidate[rows.SEQ]}) "
                                           "were swapped")
            return damage("inserted", (
                f"record(s) #{place} to #{c_place - 1} chain from nothing and record #{c_place} belongs at #{place}: "
                "forged records were inserted and the later ones renumbered up"))
    elif head is not None and place > head[0]:
        return damage("inserted", f"record #{place} (seq {seq}) lies beyond the chain head (#{head[0]}) "
                                  "and chains from nothing")
    return damage("modified", f"record #{place} (seq {seq}) does not match its MAC")
