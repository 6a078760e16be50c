"""Claims on customers from the shared pool: who holds which pooled customer since when, and how each
claim ended. The pool itself is no table: a customer without an owner is in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer
from vault.models.users import User


class PoolClaim(Base):
    """One person holding one customer taken from the pool (claimed, or assigned by their manager).

    Open while `ended_at` is empty and the holder still owns the customer; the per-segment limit counts
    these, and the maintenance sweep returns to the pool those whose holder did no work for the lapse
    period. Ended claims stay as the customer's pool history.
    """

    __tablename__ = "pool_claims"
    __table_args__ = (Index("ix_pool_claims_user_open", "user_id", "segment", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    segment: Mapped[str] = mapped_column(String(16))  # the customer's segment when claimed
    kind: Mapped[str] = mapped_column(String(16))  # "claim" or "assignment"
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "lapsed", "released", "moved" (the customer was given to someone else by other means)
    end_cause: Mapped[str | None] = mapped_column(String(16))

    customer: Mapped[Customer] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
