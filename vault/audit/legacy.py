"""The audit writer of before sharding, for the one moment it is still needed: schema revision 0014.

Revision 0014 seals customers' old clear notes through the product's own edit, which audits. It runs
before revision 0018 gives `audit_events` its `shard` and `shard_seq` columns, so the sharded writer
(`AuditLog`) cannot write there yet. `PreShardAuditLog` appends exactly as the single chain did: head row
1, the record's MAC over the chained fields alone, chained to that head; the statements name their
columns, so nothing of the newer table is asked for. Revision 0018 then turns these records into shard 0
at `shard_seq = seq` unchanged, where verification checks them in the same form.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import column, insert, table, update
from sqlalchemy.orm import Session

from vault.audit.chain import CHAINED_FIELDS, ROW_COLUMNS, format_ts, row_mac
from vault.audit.log import AuditLog, ClaimedHead
from vault.models import AuditEvent, AuditHead, utcnow

# The single chain's head.
HEAD_ID = 1
# The tables as they were before sharding: only the columns they had then.
_EVENTS = table("audit_events", *(column(c.name, c.type) for c in AuditEvent.__table__.columns
                                  if c.name in (*CHAINED_FIELDS, "mac")))
_HEAD = table("audit_head", *(column(c.name, c.type) for c in AuditHead.__table__.columns))
_CLAIM = (update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq + 1)
          .returning(_HEAD.c.seq, _HEAD.c.mac))


class PreShardAuditLog(AuditLog):
    """`AuditLog.record` as it wrote before revision 0018: one chain, no checkpoints scheduled (a migration
    has no store to write them to; the next checkpoint after the upgrade covers these records)."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key, checkpoints=None, shards=1)

    def _append(self, session: Session, values: dict[str, Any], claimed: ClaimedHead | None = None) -> AuditEvent:
        if claimed is not None:
            raise RuntimeError("the single chain of before sharding claims its head itself")
        head = session.execute(_CLAIM).one_or_none()
        if head is None:
            session.execute(insert(_HEAD).values(id=HEAD_ID, seq=0, mac="", last_checkpoint_seq=0))
            head = session.execute(_CLAIM).one()
        seq, previous_mac = head
        values = {**values, "seq": seq, "ts": utcnow()}
        values["mac"] = row_mac(self.key, tuple(format_ts(values["ts"]) if name == "ts" else values[name]
                                                for name in ROW_COLUMNS), previous_mac, shard=0)
        session.execute(insert(_EVENTS).values(values))
        session.execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(mac=values["mac"]))
        # What it will be once revision 0018 has run; not added to the session (its columns are not there yet).
        return AuditEvent(**values, shard=0, shard_seq=seq)
