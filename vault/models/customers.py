"""Customers, the asset the vault exists to keep with the company."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.core.segments import Segment
from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.users import User


def name_key(name: str) -> str:
    """A name folded for search: compatibility-decomposed, accents dropped, case-folded, spaces collapsed.
    "Ibérica  S.A." and "iberica s.a." give the same key on every database."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())[:200]


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # The name folded for search: accents and case removed, spaces collapsed ("Ibérica" → "iberica"),
    # so look-ups match alike on SQLite and PostgreSQL (`vault.services.customers.name_key`).
    name_key: Mapped[str] = mapped_column(String(200), index=True, default="")
    segment: Mapped[Segment] = mapped_column(String(16), default=Segment.ORDINARY)
    # The account manager who owns the relationship; handed to a successor on departure.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Since when the current owner has held the relationship: the rotation plan's tenure. Kept by the
    # model (`_owner_moved`), so every way of changing the owner restarts it. Loaded only when asked for
    # (the rotation plan undefers it): schema revision 0014 seals old notes through this model before
    # revision 0015 adds the column.
    owner_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, deferred=True)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    co_owners: Mapped[list[CustomerCoOwner]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin",
        order_by="CustomerCoOwner.added_at")

    @property
    def co_owner_ids(self) -> frozenset[int]:
        return frozenset(c.user_id for c in self.co_owners)

    def worked_by(self, user_id: int) -> bool:
        """Whether the person owns or co-owns the customer (their "book")."""
        return self.owner_id == user_id or user_id in self.co_owner_ids


class CustomerCoOwner(Base):
    """A second or third account manager on a key customer (team selling)."""

    __tablename__ = "customer_co_owners"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="co_owners")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class CustomerAccess(Base):
    """One person reading or looking up one customer's record: the directory alerts count these, a
    look-up grants a day's sight of the customer, and the departure report lists them. The audit log
    has the same facts; this table answers "who read which customers lately" with one indexed query."""

    __tablename__ = "customer_access"
    __table_args__ = (Index("ix_customer_access_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "read", "lookup", "reveal", "list" or "search"
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _fold_name(_mapper: object, _connection: object, customer: Customer) -> None:
    # Kept by the model itself, so no path that names a customer can leave the key stale.
    customer.name_key = name_key(customer.name)


@event.listens_for(Customer.owner_id, "set")
def _owner_moved(customer: Customer, value: int | None, previous: object, _initiator: object) -> None:
    # Any path that gives the customer to someone else (assignment, handover, rotation, the pool) restarts
    # the tenure; setting the same owner again does not.
    if value != previous:
        customer.owner_since = utcnow()
