"""The only writer of audit rows.

`AuditLog.record` appends inside the caller's transaction: the record commits with the act or not at
all, so an act whose record cannot be written does not happen (fail closed). Appends lock the chain
head row (SQLite: the whole database, by BEGIN IMMEDIATE), which is what keeps the chain linear with
several workers. The record is written with plain statements rather than through the ORM's unit of
work: the head lock is held until the caller commits, and every microsecond spent under it is a
microsecond every other writer waits.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, func, insert, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, make_transient_to_detached

from vault.audit.chain import ROW_COLUMNS, canonical_detail, format_ts, row_mac
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction, audit_action
from vault.core.context import AccessContext
from vault.models import AuditEvent, AuditHead, User, utcnow

if TYPE_CHECKING:
    from vault.audit.checkpoints import Checkpointer

HEAD_ID = 1
_DUE = "vault_audit_checkpoint_due"
log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, key: bytes, checkpoints: Checkpointer | None = None) -> None:
        self._key = key
        self.checkpoints = checkpoints
        # Called with (session, event) after each append, still inside the transaction.
        self.after_append: list[Callable[[Session, AuditEvent], None]] = []

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
    ) -> AuditEvent:
        """Append one event to the chain within `session`'s transaction.

        Args:
            action: an `AuditAction` member (or an `Action`, each of which is one); any other name
                raises ValueError before anything is written, so a misspelt event fails at once.
            actor: the person acting (None for the system, a command line operator named in `ctx.operator`,
                or an unknown login name given in actor_name).
            outcome: "allowed", "denied" or "failed".
            reason_code: the policy's reason code for a refusal.
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
        # One statement takes the head's row lock (SQLite: the transaction holds the database) and
        # claims the next sequence number; the lock is held from here to the commit, so this is
        # done with as few round trips as possible: claim, then insert the record and move the head.
        head = session.execute(_CLAIM).one_or_none()
        if head is None:
            session.execute(insert(_HEAD).values(id=HEAD_ID, seq=0, mac="", last_checkpoint_seq=0))
            head = session.execute(_CLAIM).one()
        seq, previous_mac, last_checkpoint_seq, last_checkpoint_at = head
        # Timestamps are kept to the microsecond, as the canonical form shows them; taken under the
        # lock, so time never runs backwards along the chain (short of the clock itself).
        values["seq"] = seq
        values["ts"] = utcnow()
        values["mac"] = row_mac(self._key, tuple(format_ts(values["ts"]) if name == "ts" else values[name]
                                                 for name in ROW_COLUMNS), previous_mac)
        due, clock = False, None
        if self.checkpoints is not None:
            due, clock = self.checkpoints.due(seq, values["ts"], last_checkpoint_seq, last_checkpoint_at)
        params = {f"e_{name}": value for name, value in values.items()}
        moved = {"head_mac": values["mac"], "clock": clock}
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_INSERT_AND_MOVE, {**params, **moved})  # one round trip under the lock
        else:
            session.execute(_INSERT, params)
            session.execute(_MOVE, moved)
        if due:
            session.info[_DUE] = self.checkpoints
        # The caller gets the record as a persistent object, without the ORM writing it a second time.
        event = AuditEvent(**values)
        make_transient_to_detached(event)
        session.add(event)
        for hook in self.after_append:
            hook(session, event)
        return event


_LIMITS = {c.name: c.type.length for c in AuditEvent.__table__.columns
           if isinstance(c.type, String) and c.type.length and c.name not in ("mac",)}
# The statements of an append, built once (their compiled forms are cached).
_HEAD = AuditHead.__table__
_CLAIM = (
    update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.mac, _HEAD.c.last_checkpoint_seq, _HEAD.c.last_checkpoint_at)
)
# Parameters are prefixed so that none of them is taken for a column of the head in the combined form.
_EVENTS = AuditEvent.__table__
_INSERT = insert(_EVENTS).values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in _EVENTS.columns})
_MOVE = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(
    mac=bindparam("head_mac"),
    last_checkpoint_at=func.coalesce(bindparam("clock", type_=_HEAD.c.last_checkpoint_at.type),
                                     _HEAD.c.last_checkpoint_at),
)
_INSERT_AND_MOVE = _INSERT.add_cte(_MOVE.cte("moved"))


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


@sa_event.listens_for(Session, "after_rollback")
def _forget_checkpoint(session: Session) -> None:
    session.info.pop(_DUE, None)
