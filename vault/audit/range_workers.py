"""Verification on every core: the records split into ranges of record numbers, one worker process each.

One process verifying the log is bound by Python's work per record (fetching the row, the HMAC), so it
uses one core whatever the machine has. Each worker here runs the same one-pass check
(`vault.audit.one_pass.fit`) over its own range through its own connection, starting every chain from
the stored place and MAC of that chain's last record before the range, and hands back, per chain, the
state it started from, the state it ended in, and whether anything misfit.

Why the split is sound: the parent accepts a chain only if every range fits and each range started from
exactly the state the range before it ended in. The state a range starts from is then the place and MAC
of a record the range before it verified (or the parent's own starting point), so the accepted records
chain, in record order, exactly as one pass over the whole log would have checked them. Anything else
(a misfit, or a start that is not the previous end) sends the chain to the parent's careful walk, which
names the damage as a one-process verification does.

Every worker sees the parent's snapshot. On PostgreSQL it imports it (`SET TRANSACTION SNAPSHOT`). On
SQLite there is no such thing, and bounding each range by the last record number of the parent's
snapshot is enough: SQLite lets one writer in at a time, and an append draws its record number inside
its write transaction, so numbers follow commit order; every record numbered up to that last one was
committed before the parent's snapshot was taken and is in it, and the log is append-only (triggers
refuse updates and deletes). Workers read beside writers because every connection runs in WAL mode
(`vault.db.engine`); the heads and checkpoint rows are read by the parent alone.

Workers are forked when the process has no other thread (a fork copies only the calling thread, so a
lock held by another one would stay locked in the child forever). Otherwise they are forked from
multiprocessing's fork server, a fresh single-threaded interpreter that imports this module once (a
second or two, the first time in the process) and holds no connection. Starting workers costs that much
at most, hence the size threshold below which verification stays in one process. A forked worker never
touches the parent's engine or connections: it builds its own engine from the URL. It does not dispose
the inherited pool either: closing an inherited SQLite handle in the child would drop locks SQLite's
process-wide state believes the parent's connections hold; the child ends with `os._exit`
(multiprocessing's own end of a forked process), so nothing inherited is ever closed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url

from vault.audit import one_pass, rows
from vault.db.engine import Database
from vault.models import AuditEvent

# Below this many records per worker a verification stays in one process: starting workers would cost
# more than they save (the fork server, when it is needed, takes a second or two to start).
MIN_RECORDS = 50_000
# How many records before a range the search for each chain's last record reads in record order; a
# chain idle for longer is looked up on its own (the (shard, shard_seq) index, from the chain's end).
SCAN_LIMIT = 20_000
# How many batches a worker reads between two progress messages.
PROGRESS_EVERY = 10
log = logging.getLogger(__name__)

Vouched = dict[int, dict[int, tuple[str, int]]]


@dataclass(frozen=True)
class Task:
    """What one worker verifies: records `first`..`last` of the database at `url`."""

    index: int
    url: str
    key: bytes
    from_seq: int  # where the whole verification starts
    first: int
    last: int
    # {shard: (place, MAC before it)} where the parent starts each chain at `from_seq`: the first range
    # starts there, a later one where it finds each chain's last record from `from_seq` on before it.
    starts: dict[int, tuple[int, str]]
    vouched: Vouched
    snapshot: str | None  # PostgreSQL: the parent's exported snapshot


@dataclass(frozen=True)
class Piece:
    """One chain within one range: where it started and ended, and whether every record fit."""

    start: tuple[int, str]  # (next place, MAC of the record before it) at the range's start
    end: tuple[int, str]  # the same after the range's last record of this chain (= start if none)
    count: int
    last_number: int  # record number of this chain's last record in the range (-1 if none)
    fits: bool


def shareable(db: Database) -> bool:
    """Whether another process can open the same database (not an in-memory SQLite one)."""
    if db.dialect != "sqlite":
        return True
    database = make_url(db.url).database or ""
    return bool(database) and database != ":memory:" and "mode=memory" not in db.url


def split(from_seq: int, last_seq: int, jobs: int, min_records: int) -> list[tuple[int, int]]:
    """Contiguous ranges of record numbers covering `from_seq`..`last_seq`, one per worker, each of at
    least `min_records` numbers; [] when fewer than two such ranges fit (stay in one process)."""
    numbers = last_seq - from_seq + 1
    count = min(jobs, numbers // max(1, min_records))
    if count < 2:
        return []
    size = -(-numbers // count)
    return [(first, min(last_seq, first + size - 1)) for first in range(from_seq, last_seq + 1, size)]


def stitch(starts: dict[int, tuple[int, str]], ranges: Sequence[dict[int, Piece]],
           from_seq: int) -> dict[int, tuple[int, str, int]]:
    """{shard: (next place, last MAC, last record number)} of each chain that fits in every range and
    whose every range starts where the one before it ended; the other chains are left out."""
    ends: dict[int, tuple[int, str, int]] = {}
    for shard, start in starts.items():
        expected, previous, last_number = start[0], start[1], from_seq - 1
        for pieces in ranges:
            piece = pieces.get(shard)
            if piece is None or not piece.fits or piece.start != (expected, previous):
                break
            if piece.count:
                last_number = piece.last_number
            expected, previous = piece.end
        else:
            ends[shard] = (expected, previous, last_number)
    return ends


def run(tasks: Sequence[Task], progress: Callable[[int], None] | None) -> list[dict[int, Piece]] | None:
    """Run one worker process per task; their pieces in task order, or None when a worker failed (the
    failure is logged, and the caller verifies in its own process instead).

    Progress is the sum of the workers' records, reported as their messages arrive.
    """
    if _may_fork():
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        # Imported once by the server, not by every worker it forks.
        context.set_forkserver_preload([__name__])
    messages: Any = context.Queue()
    workers = [context.Process(target=_work, args=(task, messages), name=f"audit-verify-{task.index}", daemon=True)
               for task in tasks]
    results: dict[int, dict[int, Piece]] = {}
    try:
        for worker in workers:
            worker.start()
        while len(results) < len(workers):
            try:
                kind, index, payload = messages.get(timeout=0.5)
            except queue.Empty:
                # A worker that ended well has sent its result before it ended; one that died has not.
                dead = [w.name for i, w in enumerate(workers) if i not in results and w.exitcode not in (None, 0)]
                if dead:
                    log.warning("audit verification worker(s) %s died; verifying in one process", dead)
                    return None
                continue
            if kind == "progress":
                if progress is not None:
                    progress(payload)
            elif kind == "done":
                results[index] = payload
            else:
                log.warning("audit verification worker %s failed (%s); verifying in one process", index, payload)
                return None
    finally:
        for worker in workers:
            if worker.is_alive() and len(results) < len(workers):
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:
                worker.join()
        messages.close()
    return [results[task.index] for task in tasks]


def _may_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def _work(task: Task, messages: Any) -> None:
    """A worker's life: verify its range, send the pieces (or why it could not)."""
    unsent = 0

    def report(count: int) -> None:
        nonlocal unsent
        unsent += count
        if unsent >= PROGRESS_EVERY * rows.BATCH:
            messages.put(("progress", task.index, unsent))
            unsent = 0

    try:
        pieces = verify_range(task, report)
        if unsent:
            messages.put(("progress", task.index, unsent))
        messages.put(("done", task.index, pieces))
    except Exception as exc:  # handed to the parent, which falls back to one process
        messages.put(("failed", task.index, f"{type(exc).__name__}: {exc}"))


def verify_range(task: Task, progress: Callable[[int], None] | None = None) -> dict[int, Piece]:
    """The one pass over records `task.first`..`task.last` through a connection of this process's own;
    returns the piece of every chain."""
    db = Database(task.url, pool_size=1, max_overflow=0)
    try:
        with rows.read_snapshot(db, snapshot=task.snapshot) as connection:
            begin = task.starts
            if task.first > task.from_seq:
                begin = chain_starts(connection, task.from_seq, task.first, task.starts)
            state = {shard: [place, mac, -1, task.vouched.get(shard) or {}] for shard, (place, mac) in begin.items()}
            odd: set[int] = set()
            query = rows.canonical_query(db.dialect, from_seq=task.first, through_seq=task.last)
            one_pass.fit(rows.read_ahead(connection, query), task.key, state, odd, progress)
    finally:
        db.dispose()
    pieces: dict[int, Piece] = {}
    for shard, start in begin.items():
        chain = state.get(shard)
        if chain is None:
            pieces[shard] = Piece(start, start, 0, -1, False)
        else:
            pieces[shard] = Piece(start, (chain[0], chain[1]), chain[0] - start[0], chain[2], True)
    return pieces


def chain_starts(connection: Connection, from_seq: int, first: int,
                 starts: dict[int, tuple[int, str]]) -> dict[int, tuple[int, str]]:
    """{shard: (place after, MAC of) that chain's last record numbered `from_seq`..`first` - 1}, or the
    chain's start in `starts` (where the verification starts it) when it has none there.

    Records before `from_seq` are trusted, not verified, so a range never starts from one of them: its
    start must be a record an earlier range verified, or the same start as the first range's.

    Read backwards in record order from `first` (the primary key) until every chain is found, which the
    busy chains are within a few records; a chain idle for longer than `SCAN_LIMIT` records is looked
    up on its own, from its end backwards along the (shard, shard_seq) index, where a chain idle since
    before `first` has its answer first.
    """
    e = AuditEvent
    found: dict[int, tuple[int, str]] = {}
    recent = (select(e.seq, e.shard, e.shard_seq, e.mac).where(e.seq < first, e.seq >= from_seq)
              .order_by(e.seq.desc()).limit(SCAN_LIMIT))
    batches = rows.batches(connection, recent)
    try:
        for batch in batches:
            for _seq, shard, place, mac in batch:
                if shard in starts and shard not in found:
                    found[shard] = (place + 1, mac)
            if len(found) == len(starts):
                break
    finally:
        batches.close()
    for shard in sorted(set(starts) - set(found)):
        row = connection.execute(select(e.shard_seq, e.mac).where(e.shard == shard, e.seq < first, e.seq >= from_seq)
                                 .order_by(e.shard_seq.desc()).limit(1)).first()
        found[shard] = starts[shard] if row is None else (int(row[0]) + 1, row[1])
    return found
