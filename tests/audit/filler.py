"""Fill the audit log fast with genuine chained records, for tests and benches that need many rows.

Appending a million records one transaction at a time would take far longer than the thing being
measured, so the rows are generated and MAC'd here with the reference encoder (`chain.compute_mac`,
not the fast one under test), then bulk-inserted: COPY on PostgreSQL, executemany on SQLite. The
records go to one shard's chain (shard 1 unless told), numbered after the highest record number; that
shard's head is moved to the last row (and PostgreSQL's number sequence past it), so the result is
indistinguishable from real appends.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from vault.audit.chain import CHAINED_FIELDS, compute_mac, format_ts
from vault.audit.shards import shard_for
from vault.db.engine import Database
from vault.models import AuditEvent, AuditHead

ACTIONS = ("auth:login", "document:view", "document:view", "document:view", "loan:request", "loan:approve",
           "document:upload", "document:download", "auth:logout")
NAMES = ("alice", "bob", "chloé", "dmitri", "eve", "françois", "grace", "hiro")
PLACES = (None, "Head office", "Branch Nord")
COLUMNS = (*CHAINED_FIELDS, "shard", "shard_seq", "mac")


def records(key: bytes, count: int, start_seq: int, previous_mac: str, *, seed: int = 7,
            start: datetime | None = None, shard: int = 1, start_place: int | None = None,
            heads: dict[int, tuple[int, str]] | None = None) -> Iterator[tuple[dict[str, Any], datetime]]:
    """`count` chained records numbered from `start_seq`, in `shard` from place `start_place` (default
    `start_seq`) after `previous_mac`, one per 10 ms of a day's work.

    With `heads` ({shard: (place, mac)} of every shard, updated as records are made) each record goes
    to its actor's shard instead, so the chains interleave as real appends make them."""
    rng = random.Random(seed)
    moment = start or datetime.now(UTC) - timedelta(seconds=count / 100 + 60)
    mac = previous_mac
    place = start_seq if start_place is None else start_place
    for seq in range(start_seq, start_seq + count):
        moment += timedelta(microseconds=10_000 + rng.randrange(1000))
        actor = rng.randrange(len(NAMES))
        if heads is not None:
            shard = shard_for(actor + 1, None, len(heads))
            place, mac = heads[shard][0] + 1, heads[shard][1]
        action = rng.choice(ACTIONS)
        denied = rng.random() < 0.05
        detail: dict[str, Any] = {}
        if action == "document:view":
            detail = {"bytes": rng.randrange(10_000, 5_000_000), "mode": "view"}
        elif action == "loan:request":
            detail = {"days": rng.randrange(1, 30), "note": "réunion client \"Q3\""}
        record = {
            "seq": seq, "ts": format_ts(moment), "actor_id": actor + 1, "actor_name": NAMES[actor],
            "action": action, "outcome": "denied" if denied else "allowed",
            "reason_code": "quota_exhausted" if denied else None,
            "customer_id": rng.randrange(1, 500), "document_id": rng.randrange(1, 5000),
            "version_id": rng.randrange(1, 9000) if action.startswith("document") else None,
            "loan_id": rng.randrange(1, 800) if action.startswith("loan") else None,
            "subject_user_id": actor + 1 if action.startswith("auth") else None,
            "client_addr": f"10.1.{rng.randrange(256)}.{rng.randrange(256)}", "named_place": rng.choice(PLACES),
            "declared_place": "Client site, Lyon" if rng.random() < 0.1 else None,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
            "reason_text": "Preparing the renewal meeting" if action == "loan:request" else None,
            "request_id": f"{rng.getrandbits(64):016x}{seq:016x}", "detail": detail,
            "shard": shard, "shard_seq": place,
        }
        mac = compute_mac(key, record, mac)
        record["mac"] = mac
        if heads is not None:
            heads[shard] = (place, mac)
        place += 1
        yield record, moment


def fill(db: Database, key: bytes, count: int, *, batch: int = 10_000, seed: int = 7,
         shard: int = 1, shards: int | None = None) -> tuple[int, str]:
    """Append `count` records to `shard` after its head, or, with `shards`, to the chains 1..`shards`
    by actor as the application would; returns the (last) shard's new head (shard_seq, mac)."""
    chains = [shard] if shards is None else list(range(1, shards + 1))
    heads: dict[int, tuple[int, str]] = {}
    with db.session() as session:
        for chain in chains:
            head = session.execute(select(AuditHead.seq, AuditHead.mac).where(AuditHead.id == chain)).one_or_none()
            if head is None:
                session.add(AuditHead(id=chain, seq=0, mac="", last_checkpoint_seq=0))
                head = (0, "")
            heads[chain] = (int(head[0]), head[1])
        number = int(session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0))) or 0)
    if count <= 0:
        return heads[chains[-1]]
    place, mac = heads[shard] if shards is None else (0, "")
    generated = records(key, count, number + 1, mac, seed=seed, shard=shard, start_place=place + 1,
                        heads=None if shards is None else heads)
    seq = number
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.dialect == "postgresql":
            with cursor.copy(f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for record, moment in generated:
                    copy.write_row(_values(record, moment))
                    seq, place, mac = record["seq"], record["shard_seq"], record["mac"]
            cursor.execute("SELECT setval('audit_event_numbers', %s)", (seq,))
        else:
            cursor.execute("BEGIN IMMEDIATE")
            statement = (f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
                         f"VALUES ({', '.join('?' for _ in COLUMNS)})")
            rows: list[tuple[Any, ...]] = []
            for record, moment in generated:
                rows.append(_values(record, moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")))
                seq, place, mac = record["seq"], record["shard_seq"], record["mac"]
                if len(rows) >= batch:
                    cursor.executemany(statement, rows)
                    rows.clear()
            cursor.executemany(statement, rows)
        raw.commit()
    finally:
        raw.close()
    if shards is None:
        heads[shard] = (place, mac)
    with db.session() as session:
        for chain, (at, head_mac) in heads.items():
            session.execute(update(AuditHead).where(AuditHead.id == chain).values(seq=at, mac=head_mac))
    return heads[chains[-1]]


def _values(record: dict[str, Any], ts: Any) -> tuple[Any, ...]:
    values = []
    for name in COLUMNS:
        if name == "ts":
            values.append(ts)
        elif name == "detail":
            values.append(json.dumps(record["detail"], sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        else:
            values.append(record[name])
    return tuple(values)
