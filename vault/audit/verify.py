"""Recompute the chain and check it against its checkpoints; name the first damage and its kind.

Kinds of damage, told apart by what still chains (MACs cover the sequence number, so a moved record
only verifies at its original place):

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

from sqlalchemy import Connection, select

from vault.audit import rows
from vault.audit.chain import mac_function, row_mac
from vault.audit.checkpoints import Checkpointer, CheckpointError, SignedCheckpoint
from vault.db.engine import Database
from vault.models import AuditCheckpoint

KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "checkpoint")
# How far ahead to look for the partner of a swapped record; swaps further apart read as "modified".
REORDER_WINDOW = 1000


@dataclass(frozen=True)
class Damage:
    seq: int
    kind: str
    message: str


@dataclass
class VerifyReport:
    from_seq: int
    checked: int = 0
    last_seq: int = 0
    head_seq: int | None = None
    last_mac: str = ""  # the MAC of `last_seq`, which a verification that found no damage signs
    checkpoints: int = 0
    damage: list[Damage] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def first(self) -> Damage | None:
        return min(self.damage, key=lambda d: (d.seq, KINDS.index(d.kind))) if self.damage else None

    def summary(self) -> str:
        if self.ok:
            return (f"audit log intact: {self.checked} records verified (seq {self.from_seq}..{self.last_seq}), "
                    f"{self.checkpoints} checkpoint(s) verified")
        first = self.first
        assert first is not None
        return f"audit log DAMAGED: first bad seq {first.seq}: {first.kind}: {first.message}"

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {"ok": self.ok, "from_seq": self.from_seq, "checked": self.checked, "last_seq": self.last_seq,
                "head_seq": self.head_seq, "checkpoints": self.checkpoints,
                "first_bad_seq": first.seq if first else None, "kind": first.kind if first else None,
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
) -> VerifyReport:
    """Verify records from `from_seq` on (trusting the stored MAC of the record before it).

    Checkpoints are listed from the store *before* the database snapshot is taken: a checkpoint is
    only ever written after the records it covers are committed, so every one listed must be inside
    the snapshot, and one missing from it is a truncation, not a race.
    """
    started = time.perf_counter()
    from_seq = max(1, from_seq)
    report = VerifyReport(from_seq=from_seq, last_seq=from_seq - 1)
    signed: dict[int, SignedCheckpoint] = {}
    for item in checkpointer.stored_checkpoints(since=from_seq):
        if isinstance(item, CheckpointError):
            report.damage.append(Damage(item.seq or from_seq, "checkpoint", str(item)))
        elif not item.verify(checkpointer.public_key):
            report.damage.append(Damage(item.seq, "checkpoint", f"checkpoint {item.seq} has an invalid signature"))
        else:
            signed[item.seq] = item
    with rows.read_snapshot(db) as connection:
        head = rows.head(connection)
        report.head_seq = head[0] if head else None
        for row in connection.execute(select(AuditCheckpoint.seq, AuditCheckpoint.mac)
                                      .where(AuditCheckpoint.seq >= from_seq)):
            if row.seq in signed or any(d.seq == row.seq for d in report.damage):
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
        previous = rows.mac_at(connection, from_seq - 1)
        if previous is None:
            report.damage.append(Damage(from_seq - 1, "deleted",
                                        f"record {from_seq - 1}, where verification starts, is missing"))
        else:
            _walk(report, key, connection, db.dialect, previous, signed, head, progress)
    report.checkpoints = len(signed)
    report.seconds = time.perf_counter() - started
    return report


def _walk(report: VerifyReport, key: bytes, connection: Connection, dialect: str, previous: str,
          signed: dict[int, SignedCheckpoint], head: tuple[int, str] | None,
          progress: Callable[[int], None] | None) -> None:
    expected = report.from_seq
    last_checkpoint = report.from_seq - 1
    mac_of = mac_function(key)
    for seq, text, mac in rows.stream(connection, rows.canonical_query(dialect, from_seq=report.from_seq)):
        if seq != expected:
            span = f"{expected}" if seq == expected + 1 else f"{expected} to {seq - 1}"
            report.damage.append(Damage(expected, "deleted", f"record(s) {span} are missing"))
            return
        if mac_of((text + previous).encode("utf-8")) != mac:
            # The database's encoding is a shortcut; the Python encoder has the last word, and the
            # full rows are what the damage is classified from.
            full = _Peekable(rows.stream(connection, rows.chain_query(dialect, from_seq=seq)))
            row = next(full)
            if row_mac(key, row, previous) != mac:
                report.damage.append(_classify(key, row, previous, full, head))
                return
            full.close()
        checkpoint = signed.get(seq)
        if checkpoint is not None:
            if checkpoint.mac != mac:
                report.damage.append(Damage(seq, "modified", (
                    f"the chain was recomputed: record {seq} no longer carries the MAC signed in checkpoint {seq} "
                    f"(the change lies between seq {last_checkpoint + 1} and {seq})")))
                return
            last_checkpoint = seq
        previous = mac
        expected += 1
        report.checked += 1
        report.last_seq, report.last_mac = seq, mac
        if progress is not None and report.checked % rows.BATCH == 0:
            progress(rows.BATCH)
    if progress is not None:
        progress(report.checked % rows.BATCH)
    last = expected - 1
    if head is not None and head[0] > last:
        report.damage.append(Damage(last + 1, "truncated",
                                    f"the chain ends at seq {last} but the chain head says {head[0]}"))
    elif head is not None and head[0] < last:
        report.damage.append(Damage(head[0] + 1, "inserted",
                                    f"records {head[0] + 1} to {last} lie beyond the chain head ({head[0]})"))
    elif head is not None and last >= report.from_seq and head[1] != previous:
        report.damage.append(Damage(last, "modified", f"the chain head disagrees with record {last}'s MAC"))
    beyond = [seq for seq in signed if seq > last]
    if beyond:
        # The head row is the attacker's to reset; the write-once store is not.
        report.damage.append(Damage(last + 1, "truncated", (
            f"records after seq {last} are missing (the write-once store holds a checkpoint of seq "
            f"{max(beyond)}; the database's chain ends at seq {last})")))


def _classify(key: bytes, row: Any, previous: str, stream: _Peekable, head: tuple[int, str] | None) -> Damage:
    """Why does `row` (at the expected sequence number) not chain from `previous`?"""
    seq, mac = row[rows.SEQ], row[rows.MAC]
    ahead = stream.peek(1)
    following = ahead[0] if ahead else None
    if following is not None:
        f_seq, f_mac = following[rows.SEQ], following[rows.MAC]
        if f_seq == seq + 1 and row_mac(key, following, mac) == f_mac:
            return Damage(seq, "modified", f"record {seq} does not match its MAC; the next record still chains from it")
        if row_mac(key, following, mac, seq=f_seq + 1) == f_mac:
            return Damage(seq, "deleted",
                          f"a record before seq {f_seq + 1} was deleted and the later records renumbered down")
        window = stream.peek(REORDER_WINDOW)
        for j, candidate in enumerate(window):
            if row_mac(key, candidate, previous, seq=seq) != candidate[rows.MAC]:
                continue
            c_seq = candidate[rows.SEQ]
            before = candidate if j == 0 else window[j - 1]
            if row_mac(key, row, before[rows.MAC], seq=c_seq) == mac:
                return Damage(seq, "reordered", f"records {seq} and {c_seq} were swapped")
            return Damage(seq, "inserted", (
                f"record(s) {seq} to {c_seq - 1} chain from nothing and record {c_seq} belongs at seq {seq}: "
                "forged records were inserted and the later ones renumbered up"))
    elif head is not None and seq > head[0]:
        return Damage(seq, "inserted", f"record {seq} lies beyond the chain head ({head[0]}) and chains from nothing")
    return Damage(seq, "modified", f"record {seq} does not match its MAC")
