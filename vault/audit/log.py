"""The only writer of audit rows.

`AuditLog.record` appends inside the caller's transaction: the record commits with the act or not at
all, so an act whose record cannot be written does not happen (fail closed). Appends lock the chain
head row (SQLite: the whole database, by BEGIN IMMEDIATE), which is what keeps the chain linear with
several workers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import AccessContext
from ..models import AuditEvent, AuditHead, User, utcnow
from .chain import compute_mac, record_dict

HEAD_ID = 1


class AuditLog:
    def __init__(self, key: bytes) -> None:
        self._key = key
        # Called with (session, event) after each append, still inside the transaction; the
        # checkpoint writer hangs here.
        self.after_append: list[Callable[[Session, AuditEvent], None]] = []

    @property
    def key(self) -> bytes:
        return self._key

    def record(
        self,
        session: Session,
        *,
        action: str,
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
            action: an `Action` value or another stable event name such as "auth:login".
            actor: the person acting (None for the system or an unknown login name, given in actor_name).
            outcome: "allowed", "denied" or "failed".
            reason_code: the policy's reason code for a refusal.
        """
        ctx = ctx or AccessContext()
        head = session.execute(
            select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=HEAD_ID, seq=0, mac="", last_checkpoint_seq=0)
            session.add(head)
            session.flush()
        event = AuditEvent(
            seq=head.seq + 1,
            ts=utcnow(),
            actor_id=actor.id if actor is not None else None,
            actor_name=actor_name if actor_name is not None else (actor.username if actor else "system"),
            action=str(action),
            outcome=outcome,
            reason_code=reason_code,
            customer_id=customer_id,
            document_id=document_id,
            version_id=version_id,
            loan_id=loan_id,
            subject_user_id=subject_user_id,
            client_addr=ctx.client_addr,
            named_place=ctx.named_place,
            declared_place=ctx.declared_place,
            user_agent=(ctx.user_agent or "")[:400] or None,
            reason_text=reason_text,
            request_id=ctx.request_id,
            detail=json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        )
        # Timestamps are kept to the microsecond, as the canonical form shows them.
        event.mac = compute_mac(self._key, record_dict(event), head.mac)
        session.add(event)
        head.seq = event.seq
        head.mac = event.mac
        session.flush()
        for hook in self.after_append:
            hook(session, event)
        return event
