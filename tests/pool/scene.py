"""Pooled customers and the people who claim them, written straight to the database."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from vault.core import events
from vault.models import AuditEvent, Customer, PoolClaim, Segment


def pooled(rt: Any, segment: Segment = Segment.KEY, name: str | None = None) -> int:
    """A customer in the pool (no owner), as a new lead is."""
    with rt.db.session() as session:
        customer = Customer(name=name or f"Lead {uuid.uuid4().hex[:8]}", segment=segment, owner_id=None)
        session.add(customer)
        session.commit()
        return customer.id


def owner_of(rt: Any, customer_id: int) -> int | None:
    with rt.db.session() as session:
        return session.get(Customer, customer_id).owner_id


def claims(rt: Any, customer_id: int) -> list[PoolClaim]:
    with rt.db.session() as session:
        rows = list(session.scalars(select(PoolClaim).where(PoolClaim.customer_id == customer_id)
                                    .order_by(PoolClaim.id)))
        session.expunge_all()
        return rows


def audited(rt: Any, action: str, outcome: str = "allowed") -> list[AuditEvent]:
    with rt.db.session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.outcome == outcome)
                                    .order_by(AuditEvent.seq)))
        session.expunge_all()
        return rows


class OwnerChanges:
    """Records `customer.owner_changed` events while in use (the hook the customer letters listen to)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.seen.append({"customer_id": kwargs["customer"].id, "previous": kwargs["previous_owner_id"],
                          "new": kwargs["new_owner"].id, "cause": kwargs["cause"]})

    def __enter__(self) -> OwnerChanges:
        events.listen("customer.owner_changed")(self)
        return self

    def __exit__(self, *_: Any) -> None:
        events._listeners["customer.owner_changed"].remove(self)
