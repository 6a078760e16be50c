"""The audit log: an append-only, HMAC-chained sequence of events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.models.base import Base, UTCDateTime


class AuditEvent(Base):
    """One recorded act. No foreign keys: the record must outlive anything it names."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ux_audit_events_shard_seq", "shard", "shard_seq", unique=True),
        # The person's records of one kind: the rules' "revealed from this place before" (migration 0026).
        # It serves the searches by the person alone too, so `actor_id` has no index of its own (one more
        # index to keep up on every append, answering nothing this one does not).
        Index("ix_audit_events_actor_action", "actor_id", "action"),
    )

    # The global number that orders the log; within a shard it grows with `shard_seq`.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Which chain the record belongs to and its place in it (see vault.audit.shards). Shard 0 is the
    # single chain of before the log was sharded, closed: its records keep their original form.
    shard: Mapped[int] = mapped_column(SmallInteger, default=0)
    shard_seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # indexed by ix_audit_events_actor_action
    actor_name: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # allowed | denied | failed
    reason_code: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    document_id: Mapped[int | None] = mapped_column(Integer, index=True)
    version_id: Mapped[int | None] = mapped_column(Integer)
    loan_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    named_place: Mapped[str | None] = mapped_column(String(100))
    declared_place: Mapped[str | None] = mapped_column(String(200))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    reason_text: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON object
    mac: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The head of one shard's chain (`id` is the shard number): locking it serializes that shard's appends.

    `seq` is the shard's last `shard_seq`, `mac` that record's MAC; `last_checkpoint_*` say what of this
    shard the latest checkpoint signed.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    mac: Mapped[str] = mapped_column(String(64), default="")
    last_checkpoint_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_checkpoint_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditCheckpoint(Base):
    """Signed heads; the signed copy lives in the object store, write-once where the store allows.

    `seq` names the checkpoint: the number of records its heads cover, summed over the shards (it only
    grows). `heads` is the JSON {shard: [shard_seq, mac]} it signs; checkpoints of before sharding have
    none and sign the single chain, now shard 0, at `seq` with `mac`.
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mac: Mapped[str] = mapped_column(String(64))
    heads: Mapped[str | None] = mapped_column(Text)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    object_key: Mapped[str] = mapped_column(String(255))
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over the canonical checkpoint bytes
