"""Sealing the customers' old free-text notes, kept in clear in `customers.notes` before records existed.

Schema revision 0014 drops that column; it cannot seal by itself (a migration holds no keyring), so the
caller that has the keyring (`vault init`) gives it `sealer(rt)`. Each customer's clear notes become the
notes of its sealed record through `records.edit` as the product itself (no actor): a new version, audited
as `customer:edit`. Notes the record already has are kept, the old ones put after them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from vault.audit.legacy import PreShardAuditLog
from vault.core.context import AccessContext
from vault.models import Customer
from vault.runtime import Runtime
from vault.services import records


def _merged(current: str, old: str) -> str:
    if not current.strip():
        return old
    return f"{current}\n\n{old}"[: records.MAX_NOTES]


def seal_clear_notes(rt: Runtime, connection: Connection) -> int:
    """Seal every customer's clear notes into its record and empty the column; returns how many moved.
    Works on `connection`'s transaction (the migration's): nothing is committed here."""
    ctx = AccessContext.cli()
    rows = connection.execute(text("SELECT id, notes FROM customers WHERE notes IS NOT NULL")).all()
    rows = [(cid, notes.strip()) for cid, notes in rows if notes and notes.strip()]
    session = rt.db.sessions(bind=connection)
    try:
        for customer_id, notes in rows:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            current = records.snapshot(rt, records.record_of(session, customer_id))["notes"]
            # Old notes were never checked like the record's: control characters become spaces.
            plain = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in notes)
            records.edit(rt, session, None, customer, {"notes": _merged(current, plain[: records.MAX_NOTES])},
                         ctx=ctx)
            session.flush()
            session.execute(text("UPDATE customers SET notes = '' WHERE id = :id"), {"id": customer_id})
        session.flush()
    finally:
        session.close()
    return len(rows)


def sealer(rt: Runtime) -> Callable[[Connection], None]:
    """The function schema revision 0014 calls to seal the clear notes (see `vault.db.schema.upgrade`)."""

    def seal(connection: Connection) -> None:
        # At revision 0014 the audit log is still the single chain (sharding comes with 0018), so the
        # edits are audited in that form; 0018 then makes them part of shard 0 like every older record.
        seal_clear_notes(dataclasses.replace(rt, audit=PreShardAuditLog(rt.audit.key)), connection)

    return seal
