"""The only writer of audit rows.

`AuditLog.record` appends inside the caller's transaction: the record commits with the act or not at
all, so an act whose record cannot be written does not happen (fail closed). The log is several chains
(vault.audit.shards); an append locks the head row of its record's chain (SQLite: the whole database,
by BEGIN IMMEDIATE), which is what keeps that chain linear with several workers while acts of other
people append to the other chains. The global record number comes from a PostgreSQL sequence, taken
under the head lock so that it grows along each chain; SQLite, one writer at a time, counts the table.

The record is written with plain statements rather than through the ORM's unit of work: the head lock
is held until the caller commits, and every microsecond spent under it is a microsecond every other
writer waits.

Checkpoints are only *scheduled* here. Signing and storing one is slow I/O (an object-store round
trip), so it must not happen while the head lock is held, and it must not happen before the records it
vouches for are committed: a signed, write-once checkpoint of a head that is then rolled back would
accuse an honest database of truncation forever. So the append that crosses the threshold marks its
session, and the checkpoint is written by an `after_commit` hook once the transaction is durable, in a
transaction of its own. If that write fails the act stands (its record is committed) and the checkpoint
is merely late: the next append finds it still due, and `vault audit checkpoint` forces one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CTE, String, bindparam, exists, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vault.audit.chain import ROW_COLUMNS, canonical_detail, format_ts, row_mac
from vault.audit.shards import shard_for
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction, audit_action
from vault.core.context import AccessContext
from vault.models import AuditEvent, AuditHead, User, utcnow

if TYPE_CHECKING:
    from vault.audit.checkpoints import Checkpointer

_DUE = "vault_audit_checkpoint_due"
_SHARD = "vault_audit_shard"
_CLAIMED_HEAD = "vault_audit_claimed_head"
SEQUENCE = "audit_event_numbers"
log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, key: bytes, checkpoints: Checkpointer | None = None, *, shards: int = 8) -> None:
        self._key = key
        self.checkpoints = checkpoints
        self.shards = max(1, shards)

    @property
    def key(self) -> bytes:
        return self._key

    def record(
        self,
        session: Session,
        *,
        action: AuditAction | Action,
        actor: User | None,
        ctx: AccessContext | None = None,
        outcome: str = "allowed",
        reason_code: str | None = None,
        customer_id: int | None = None,
        document_id: int | None = None,
        version_id: int | None = None,
        loan_id: int | None = None,
        subject_user_id: int | None = None,
        reason_text: str | None = None,
        detail: dict[str, Any] | None = None,
        actor_name: str | None = None,
        head: ClaimedHead | None = None,
    ) -> AppendedRecord:
        """Append one event to the chain within `session`'s transaction; returns the record as written.

        Args:
            action: an `AuditAction` member (or an `Action`, each of which is one); any other name
                raises ValueError before anything is written, so a misspelt event fails at once.
            actor: the person acting (None for the system, a command line operator named in `ctx.operator`,
                or an unknown login name given in actor_name).
            outcome: "allowed", "denied" or "failed".
            reason_code: the policy's reason code for a refusal.
            head: the chain's head as a statement of the caller's claimed it (`claim_head`), in this
                transaction and for this record; None: claimed here.
        """
        action = audit_action(action)
        ctx = ctx or AccessContext()
        # Anything the caller has pending goes to the database first, so it is not written while we
        # hold the head lock below.
        session.flush()
        values: dict[str, Any] = {
            "actor_id": actor.id if actor is not None else None,
            "actor_name": actor_name if actor_name is not None else (
                actor.username if actor else (ctx.operator or "system")),
            "action": str(action),
            "outcome": outcome,
            "reason_code": reason_code,
            "customer_id": customer_id,
            "document_id": document_id,
            "version_id": version_id,
            "loan_id": loan_id,
            "subject_user_id": subject_user_id,
            "client_addr": ctx.client_addr,
            "named_place": ctx.named_place,
            "declared_place": ctx.declared_place,
            "user_agent": ctx.user_agent or None,
            "reason_text": reason_text,
            "request_id": ctx.request_id,
            "detail": canonical_detail(detail),
        }
        for name, limit in _LIMITS.items():
            # Clipped to the column, as SQLite would not and PostgreSQL would refuse: an over-long
            # place or name must not make the act fail on one database and pass on the other.
            if isinstance(values[name], str) and len(values[name]) > limit:
                values[name] = values[name][:limit]
        return self._append(session, values, head)

    def shard_of(self, session: Session, actor: User) -> int:
        """The chain the next record of `actor` in `session`'s transaction joins (the `shard_id` of a
        `claim_head` statement): from now on the transaction's chain, as after an append."""
        return self._shard(session, actor.id, actor.username)

    def _append(self, session: Session, values: dict[str, Any], claimed: ClaimedHead | None = None
                ) -> AppendedRecord:
        """Chain and write the record's `values` (everything but its number, place, time and MAC)."""
        shard = self._shard(session, values["actor_id"], values["actor_name"])
        postgresql = session.get_bind().dialect.name == "postgresql"
        # One statement takes the shard head's row lock (SQLite: the transaction holds the database) and
        # claims the next place in the chain and (PostgreSQL) the global number; the lock is held from
        # here to the commit, so this is done with as few round trips as possible: claim (or take the
        # caller's claim, made with its own statement), then insert the record and move the head.
        claim = _CLAIM_PG if postgresql else _CLAIM
        # The claim pending in this session is the one from this transaction: a commit refuses it unused
        # and a rollback forgets it.
        pending = session.info.pop(_CLAIMED_HEAD, None)
        if claimed is not pending or (claimed is not None and claimed.shard != shard):
            # A claimed place would stay empty (or be taken twice): the chain would show a gap.
            raise RuntimeError("a claimed head is used by the record it was claimed for, in its transaction")
        connection = session.connection()
        head = claimed.row if claimed is not None else connection.execute(claim, {"shard_id": shard}).one_or_none()
        if head is None:
            # The shard's first record: its head is created here (a concurrent creator wins harmlessly).
            new = (pg_insert if postgresql else sqlite_insert)(_HEAD).values(
                id=shard, seq=0, mac="", last_checkpoint_seq=0).on_conflict_do_nothing()
            connection.execute(new)
            head = connection.execute(claim, {"shard_id": shard}).one()
        shard_seq, previous_mac, last_checkpoint_seq, last_checkpoint_at, seq = head
        # Timestamps are kept to the microsecond, as the canonical form shows them; taken under the
        # lock, so time never runs backwards along the chain (short of the clock itself).
        values["seq"] = seq
        values["shard"] = shard
        values["shard_seq"] = shard_seq
        values["ts"] = utcnow()
        values["mac"] = row_mac(self._key, tuple(format_ts(values["ts"]) if name == "ts" else values[name]
                                                 for name in ROW_COLUMNS), previous_mac,
                                shard=shard, shard_seq=shard_seq)
        due, clock = False, None
        if self.checkpoints is not None:
            due, clock = self.checkpoints.due(shard_seq, values["ts"], last_checkpoint_seq, last_checkpoint_at)
        params = {f"e_{name}": value for name, value in values.items()}
        moved = {"head_mac": values["mac"], "clock": clock, "shard_id": shard}
        if postgresql:
            connection.execute(_INSERT_AND_MOVE, {**params, **moved})  # one round trip under the lock
        else:
            connection.execute(_INSERT, params)
            connection.execute(_MOVE, moved)
        if due:
            session.info[_DUE] = self.checkpoints
        return AppendedRecord(**values)

    def _shard(self, session: Session, actor_id: int | None, actor_name: str | None) -> int:
        """The actor's shard, or the one this transaction already appended to (see vault.audit.shards:
        one head lock per transaction at most, so appenders never deadlock on heads)."""
        transaction = session.get_transaction()
        pinned = session.info.get(_SHARD)
        if pinned is not None and pinned[0] is transaction:
            return int(pinned[1])
        shard = shard_for(actor_id, actor_name, self.shards)
        session.info[_SHARD] = (transaction, shard)
        return shard


@dataclass(frozen=True, slots=True)
class AppendedRecord:
    """A record as `AuditLog.record` wrote it: the columns of its row (`AuditEvent`), read-only.

    Not the ORM object itself: building an `AuditEvent` and attaching it to the session cost about 110 µs
    of CPU per append (PostgreSQL, one thread), a sixth of the whole append, for a row that is already
    written and that callers only read.
    """

    seq: int
    shard: int
    shard_seq: int
    ts: datetime
    actor_id: int | None
    actor_name: str
    action: str
    outcome: str
    reason_code: str | None
    customer_id: int | None
    document_id: int | None
    version_id: int | None
    loan_id: int | None
    subject_user_id: int | None
    client_addr: str | None
    named_place: str | None
    declared_place: str | None
    user_agent: str | None
    reason_text: str | None
    request_id: str | None
    detail: str
    mac: str


@dataclass(frozen=True)
class ClaimedHead:
    """A chain's head claimed by a caller's statement (`claim_head`), for the record that follows it."""

    shard: int
    row: Any  # what `_CLAIM_PG` returns: place, previous MAC, checkpoint state, global number

    @classmethod
    def of(cls, session: Session, shard: int, columns: Sequence[Any]) -> ClaimedHead | None:
        """The claim among a statement's returned `columns` (the `claimed_columns` of its `claim_head`);
        None when nothing was claimed (the chain has no head yet, or the act did not happen): the record
        then claims as usual."""
        if columns[0] is None:
            return None
        claimed = cls(shard, tuple(columns))
        # Until its record takes it, the transaction may neither commit nor append anything else.
        session.info[_CLAIMED_HEAD] = claimed
        return claimed


if {f.name for f in fields(AppendedRecord)} != set(AuditEvent.__table__.columns.keys()):  # pragma: no cover
    raise RuntimeError("AppendedRecord no longer has the columns of AuditEvent")
_LIMITS = {c.name: c.type.length for c in AuditEvent.__table__.columns
           if isinstance(c.type, String) and c.type.length and c.name not in ("mac",)}
# The statements of an append, built once (their compiled forms are cached).
_HEAD = AuditHead.__table__
_CLAIMED = (_HEAD.c.seq, _HEAD.c.mac, _HEAD.c.last_checkpoint_seq, _HEAD.c.last_checkpoint_at)
# The global number comes in the same round trip, drawn under the head lock: PostgreSQL's sequence;
# on SQLite, whose writers take turns on the whole database, one more than the highest number.
_CLAIM = (update(_HEAD).where(_HEAD.c.id == bindparam("shard_id")).values(seq=_HEAD.c.seq + 1)
          .returning(*_CLAIMED, select(func.coalesce(func.max(AuditEvent.seq), 0) + 1).scalar_subquery()))
_CLAIM_PG = (update(_HEAD).where(_HEAD.c.id == bindparam("shard_id")).values(seq=_HEAD.c.seq + 1)
             .returning(*_CLAIMED, func.nextval(SEQUENCE).label("number")))

# Parameters are prefixed so that none of them is taken for a column of the head in the combined form.
_EVENTS = AuditEvent.__table__
_INSERT = insert(_EVENTS).values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in _EVENTS.columns})
_MOVE = update(_HEAD).where(_HEAD.c.id == bindparam("shard_id")).values(
    mac=bindparam("head_mac"),
    last_checkpoint_at=func.coalesce(bindparam("clock", type_=_HEAD.c.last_checkpoint_at.type),
                                     _HEAD.c.last_checkpoint_at),
)
_INSERT_AND_MOVE = _INSERT.add_cte(_MOVE.cte("moved"))


def claim_head(after: CTE | None = None) -> CTE:
    """PostgreSQL: the claim of the head of chain `shard_id` (`AuditLog.shard_of`) as a CTE, for a
    caller's statement that writes the act, so that the act's record claims its place without a round
    trip of its own. `after`: claimed only if that CTE returns a row (no act, no claim). Select its
    `claimed_columns`, take them with `ClaimedHead.of` and hand that to `record` as `head`, in the same
    transaction and before anything else is recorded: until then the transaction neither commits nor
    appends (a place claimed and left empty would read as a deleted record). The head's lock is held
    from that statement to the commit, as an append holds it."""
    claim = _CLAIM_PG if after is None else _CLAIM_PG.where(exists().select_from(after))
    return claim.cte("claimed_head")


def claimed_columns(claimed: CTE) -> list[Any]:
    """The claim's columns, each as a scalar subquery (NULL when nothing was claimed)."""
    return [select(column).scalar_subquery() for column in claimed.c]


@sa_event.listens_for(Session, "after_commit")
def _checkpoint_after_commit(session: Session) -> None:
    # Releasing a savepoint fires after_commit too, while the outer transaction still holds the
    # head lock: writing then would wait on our own lock. Only the outermost commit counts.
    if session.in_nested_transaction():
        return
    checkpointer = session.info.pop(_DUE, None)
    if checkpointer is None:
        return
    try:
        checkpointer.write(wait=False)
    except Exception:
        # The act and its record are committed; a late checkpoint is retried on the next append.
        log.exception("could not write an audit checkpoint; it will be retried")


@sa_event.listens_for(Session, "before_commit")
def _refuse_an_unused_claim(session: Session) -> None:
    # Releasing a savepoint fires this too: only the outermost commit is refused.
    if not session.in_nested_transaction() and session.info.get(_CLAIMED_HEAD) is not None:
        raise RuntimeError("a claimed audit chain head was not used by its record: not committed")


@sa_event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_DUE, None)
    session.info.pop(_CLAIMED_HEAD, None)
