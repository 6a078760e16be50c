"""Audit log throughput on PostgreSQL and SQLite, next to the raw limits measured in the same run.

Run ``python bench/audit_bench.py`` (``--rows 100000`` for a quicker run; the default is a million). It
starts a private PostgreSQL, fills each database with ``--rows`` genuine chained records spread over
``--shards`` chains by actor, as appends spread them (generated and MAC'd in Python, bulk-inserted: COPY
on PostgreSQL, executemany on SQLite), and prints one table:

* export: our streamed CSV and JSON Lines export of every record, beside the database's own bulk export
  of the same rows (PostgreSQL ``COPY (SELECT ...) TO STDOUT CSV``; SQLite a plain cursor into
  ``csv.writer``), all written to a file. Goal: at least 0.5 of the bulk export.
  On PostgreSQL one more line, without a goal, sets the JSON Lines export beside the database's own JSON
  export of the same columns (``COPY (SELECT row_to_json(...)) TO STDOUT``): the CSV ``COPY`` copies
  the stored text as is, while every JSON export, the database's own included, escapes every text field.
* verify: ``verify_chain`` over every record with one worker process per CPU (as ``vault audit verify``
  runs it; the label says how many processes it used: one when the log is too small to split), beside
  a bare HMAC-SHA256 loop over the same canonical bytes (precomputed for a sample of up to 100,000
  records) in one process. Goal: at least 0.3 of the bare loop. The comparison is lopsided on purpose:
  the goal is about how long a person waits for a verification, and the workers use every core while the
  baseline uses one. The bare loop is the faster of two: the standard library's HMAC object copied per
  message, and the same HMAC built from two prepared SHA-256 states (RFC 2104), which is what
  verification itself uses; the baseline is never weaker than the hashing inside what it is compared
  with. Two more lines, without a goal: verification beside the standard library's loop alone, as
  earlier runs measured it, and verification in one process (as the web pages and the API run it)
  beside the same bare loop.
* appends: ``--writers`` threads, each a different person, each making ``--appends`` transactions that
  append one record through ``AuditLog.record``, beside the same transactions inserting the same row
  without the chain (no head lock, no HMAC; numbers from a shared counter). Goal: at least 0.8 of the
  unchained rate.

Each measurement keeps the best of ``--repeats`` runs, ours and the baseline interleaved, so a burst of
load from elsewhere on the machine hits both instead of skewing their ratio. The table's last line is the
machine's load average when the run ended (1, 5 and 15 minutes): above the number of CPUs, other work
took turns with the bench, and ratios that need a spare core (the database building rows while Python
hashes the batch before) come out lower than on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from a checkout: make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto import Keyring
from tests.audit.filler import fill
from tests.fixtures.postgres import PostgresCluster
from vault.audit import rows
from vault.audit.chain import canonical_row_text
from vault.audit.export import NO_JIT, AuditExport
from vault.audit.filters import AuditFilter
from vault.audit.verify import verify_chain
from vault.config.settings import load_settings
from vault.core.context import AccessContext
from vault.db import schema
from vault.models import AuditEvent, User, utcnow
from vault.runtime import Runtime

GOALS = {"export": 0.5, "verify": 0.3, "append": 0.8}
HMAC_SAMPLE = 100_000
CTX = AccessContext(client_addr="10.1.2.3", named_place="Head office", user_agent="bench", request_id="bench-0001")


def runtime(folder: Path, keyring: Path, url: str, shards: int) -> Runtime:
    settings = load_settings({"data_dir": folder, "database_url": url, "keyring": keyring,
                              "secret_key": "bench", "audit_shards": shards}, environ={})
    rt = Runtime.build(settings)
    rt.store.ensure_ready()
    schema.upgrade(rt.db)
    return rt


def best(repeats: int, runs: dict[str, Callable[[], int]]) -> dict[str, float]:
    """Rows per second of the fastest of `repeats` interleaved runs of each function (which returns its row count)."""
    rates = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            count = run()
            rates[name] = max(rates[name], count / (time.perf_counter() - started))
    return rates


def our_export(rt: Runtime, fmt: str, out: Path) -> int:
    assert rt.audit.checkpoints is not None
    with AuditExport(rt.db, rt.audit.checkpoints, AuditFilter(), fmt) as export, out.open("wb") as handle:
        for chunk in export.chunks():
            handle.write(chunk)
        return export.stats.rows


def bulk_export(rt: Runtime, out: Path) -> int:
    columns = ", ".join((*rows.ROW_COLUMNS, "mac"))
    query = f"SELECT {columns} FROM audit_events ORDER BY seq"
    raw = rt.db.engine.raw_connection()
    count = 0
    try:
        cursor = raw.cursor()
        with out.open("wb") as handle:
            if rt.db.dialect == "postgresql":
                cursor.execute(NO_JIT)  # as the export runs (see export.NO_JIT), so both have the same planner
                with cursor.copy(f"COPY ({query}) TO STDOUT WITH CSV") as copy:
                    for block in copy:
                        handle.write(block)
                count = int(cursor.rowcount)
            else:
                text = open(handle.fileno(), "w", encoding="utf-8", newline="", closefd=False)  # noqa: SIM115
                writer = csv.writer(text, lineterminator="\n")
                cursor.execute(query)
                while batch := cursor.fetchmany(rows.BATCH):
                    writer.writerows(batch)
                    count += len(batch)
                text.flush()
        raw.rollback()
    finally:
        raw.close()
    return count


def our_verify(rt: Runtime, jobs: int, used: list[int] | None = None) -> int:
    """Verify the whole log with up to `jobs` processes; appends to `used` how many it took."""
    assert rt.audit.checkpoints is not None
    report = verify_chain(rt.db, rt.audit.key, rt.audit.checkpoints, jobs=jobs)
    if not report.ok:
        raise SystemExit(f"verification failed on a freshly filled log: {report.summary()}")
    if used is not None:
        used.append(report.processes)
    return report.checked


def hmac_sample(rt: Runtime) -> list[bytes]:
    sample: list[bytes] = []
    with rows.read_snapshot(rt.db) as connection:
        previous: dict[int, str] = {}
        for row in rows.stream(connection, rows.chain_query(rt.db.dialect)):
            shard = row[rows.SHARD]
            sample.append((canonical_row_text(row) + previous.get(shard, "")).encode("utf-8"))
            previous[shard] = row[rows.MAC]
            if len(sample) >= HMAC_SAMPLE:
                break
    return sample


def bare_hmac(key: bytes, sample: list[bytes]) -> int:
    # The standard library's HMAC: the key schedule done once, the HMAC object copied per message.
    base = hmac.new(key, digestmod=hashlib.sha256)
    for message in sample:
        h = base.copy()
        h.update(message)
        h.hexdigest()
    return len(sample)


def bare_hmac_pads(key: bytes, sample: list[bytes]) -> int:
    # The same HMAC from two prepared SHA-256 states (RFC 2104), copied per message: no Python-level
    # HMAC object, so faster than the loop above.
    block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    for message in sample:
        h = inner.copy()
        h.update(message)
        o = outer.copy()
        o.update(h.digest())
        o.hexdigest()
    if sample:
        h = inner.copy()
        h.update(sample[0])
        o = outer.copy()
        o.update(h.digest())
        assert o.hexdigest() == hmac.new(key, sample[0], hashlib.sha256).hexdigest()
    return len(sample)


def json_copy(rt: Runtime, out: Path) -> int:
    """PostgreSQL's own JSON export of the chained columns and the MAC, one object per line."""
    columns = ", ".join((*rows.ROW_COLUMNS, "mac"))
    query = f"SELECT row_to_json(r) FROM (SELECT {columns} FROM audit_events ORDER BY seq) AS r"
    raw = rt.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(NO_JIT)
        with out.open("wb") as handle, cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
            for block in copy:
                handle.write(block)
        count = int(cursor.rowcount)
        raw.rollback()
    finally:
        raw.close()
    return count


def concurrently(writers: int, appends: int, transaction: Callable[[int, int], None]) -> int:
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def work(writer: int) -> None:
        try:
            start.wait()
            for i in range(appends):
                transaction(writer, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return writers * appends


def chained_append(rt: Runtime) -> Callable[[int, int], None]:
    # Each writer is a different person (only an append's id and name are read; records keep no keys).
    people = [User(id=writer + 1, username=f"writer{writer}") for writer in range(64)]

    def transaction(writer: int, i: int) -> None:
        with rt.db.session() as session:
            rt.audit.record(session, action="document:view", actor=people[writer], ctx=CTX,
                            customer_id=writer + 1, document_id=i + 1, detail={"bytes": 1000 + i, "mode": "view"})
    return transaction


def unchained_append(rt: Runtime) -> Callable[[int, int], None]:
    counter = itertools.count(1_000_000_000)

    def transaction(writer: int, i: int) -> None:
        with rt.db.session() as session:
            number = next(counter)
            session.add(AuditEvent(
                seq=number, shard=writer + 1, shard_seq=number, ts=utcnow(), actor_id=writer + 1,
                actor_name=f"writer{writer}", action="document:view",
                outcome="allowed", customer_id=writer + 1, document_id=i + 1, client_addr=CTX.client_addr,
                named_place=CTX.named_place, user_agent=CTX.user_agent, request_id=CTX.request_id,
                detail='{"bytes":1000,"mode":"view"}', mac=""))
    return transaction


def bench_backend(name: str, url: Callable[[str], str], work: Path, keyring: Path, args: argparse.Namespace
                  ) -> list[tuple[str, str, float, str, float, str]]:
    print(f"[{name}] filling {args.rows:,} records ...", file=sys.stderr, flush=True)
    rt = runtime(work / f"{name}-big", keyring, url("big"), args.shards)
    started = time.perf_counter()
    fill(rt.db, rt.audit.key, args.rows, shards=args.shards)
    with rt.db.engine.connect() as connection:
        # What autovacuum would have done after such a load: the planner needs to know the table's size.
        connection.exec_driver_sql("ANALYZE audit_events")
        connection.commit()
    print(f"[{name}] filled in {time.perf_counter() - started:.1f} s; exporting ...", file=sys.stderr, flush=True)
    out = work / f"{name}-export"
    export_runs = {
        "csv": lambda: our_export(rt, "csv", out),
        "jsonl": lambda: our_export(rt, "jsonl", out),
        "bulk": lambda: bulk_export(rt, out),
    }
    if name == "postgresql":
        export_runs["json"] = lambda: json_copy(rt, out)
    exports = best(args.repeats, export_runs)
    out.unlink()
    print(f"[{name}] verifying ...", file=sys.stderr, flush=True)
    sample = hmac_sample(rt)
    jobs = os.cpu_count() or 1
    used: list[int] = []
    verifies = best(args.repeats, {"verify": lambda: our_verify(rt, jobs, used),
                                   "serial": lambda: our_verify(rt, 1),
                                   "hmac": lambda: bare_hmac(rt.audit.key, sample),
                                   "pads": lambda: bare_hmac_pads(rt.audit.key, sample)})
    processes = max(used)
    hmac_label, hmac_rate = max((("bare HMAC loop, stdlib", verifies["hmac"]),
                                 ("bare HMAC loop, pads", verifies["pads"])), key=lambda item: item[1])
    rt.close()
    print(f"[{name}] appending with {args.writers} writers ...", file=sys.stderr, flush=True)
    appends = {"chained": 0.0, "bare": 0.0}
    for round_ in range(args.repeats):
        chained = runtime(work / f"{name}-chain{round_}", keyring, url(f"chain{round_}"), args.shards)
        bare = runtime(work / f"{name}-bare{round_}", keyring, url(f"bare{round_}"), args.shards)
        for label, rt_, make in (("chained", chained, chained_append), ("bare", bare, unchained_append)):
            started = time.perf_counter()
            count = concurrently(args.writers, args.appends, make(rt_))
            appends[label] = max(appends[label], count / (time.perf_counter() - started))
        check = verify_chain(chained.db, chained.audit.key, chained.audit.checkpoints)  # type: ignore[arg-type]
        if not check.ok or check.checked != args.writers * args.appends:
            raise SystemExit(f"concurrent appends broke the chain: {check.summary()}")
        chained.close()
        bare.close()
    bulk_label = "COPY TO STDOUT CSV" if name == "postgresql" else "plain cursor -> csv"
    extra = [] if "json" not in exports else [
        (name, "export JSON Lines", exports["jsonl"], "COPY row_to_json", exports["json"], "")]
    return [
        (name, "export CSV", exports["csv"], bulk_label, exports["bulk"], "export"),
        (name, "export JSON Lines", exports["jsonl"], bulk_label, exports["bulk"], "export"),
        *extra,
        (name, f"verify, {processes} process{'es' if processes > 1 else ''}", verifies["verify"], hmac_label,
         hmac_rate, "verify"),
        (name, f"verify, {processes} process{'es' if processes > 1 else ''}", verifies["verify"],
         "bare HMAC loop, stdlib", verifies["hmac"], ""),
        (name, "verify, 1 process", verifies["serial"], hmac_label, hmac_rate, ""),
        (name, f"appends, {args.writers} writers", appends["chained"], "same txns, no chain", appends["bare"],
         "append"),
    ]


def goal(kind: str, rate: float, baseline: float) -> tuple[str, str]:
    """The goal's text and whether it is met ("-" for a line shown for comparison only)."""
    if not kind:
        return "(for comparison)", "-"
    ratio = rate / baseline if baseline else 0.0
    return f">= {GOALS[kind]} x", "yes" if ratio >= GOALS[kind] else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records in the log (default 1,000,000)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--shards", type=int, default=8, help="audit chains (VAULT_AUDIT_SHARDS)")
    parser.add_argument("--appends", type=int, default=250, help="transactions per writer")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backend", choices=["both", "sqlite", "postgresql"], default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    keyring = work / "keyring.json"
    Keyring.create(keyring)
    table = []
    try:
        if args.backend in ("both", "postgresql"):
            with PostgresCluster() as cluster:
                def pg_url(label: str) -> str:
                    cluster.create_database(label)
                    return cluster.url(label)
                table += bench_backend("postgresql", pg_url, work, keyring, args)
        if args.backend in ("both", "sqlite"):
            table += bench_backend("sqlite", lambda label: f"sqlite:///{work / f'{label}.db'}", work, keyring, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\naudit log bench: {args.rows:,} records in {args.shards} chains, {args.writers} writers x "
          f"{args.appends} appends, best of {args.repeats}, {os.cpu_count()} CPUs")
    header = f"{'backend':<11} {'measure':<20} {'ours/s':>10}  {'baseline':<22} {'base/s':>10} {'ratio':>6}  " \
             f"{'goal':<26} met"
    print(header)
    print("-" * len(header))
    for backend, measure, rate, base_label, base, kind in table:
        text, met = goal(kind, rate, base)
        print(f"{backend:<11} {measure:<20} {rate:>10,.0f}  {base_label:<22} {base:>10,.0f} {rate / base:>6.2f}  "
              f"{text:<26} {met}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at the end: {load} (1, 5, 15 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
