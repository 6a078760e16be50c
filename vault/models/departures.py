"""Departures (notice → handover → departed) and the customers handed over (alerts: `alerts.py`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer
from vault.models.users import User


class DepartureStatus(StrEnum):
    NOTICE = "notice"  # notice given: handover under way, access continues until the last day
    COMPLETED = "completed"  # the person has left and every customer has a new owner


class Departure(Base):
    """One person's way out. At most one departure per person: a person leaves once."""

    __tablename__ = "departures"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    status: Mapped[DepartureStatus] = mapped_column(String(16), default=DepartureStatus.NOTICE, index=True)
    # The last day itself lives on the user (`User.last_day`, `User.access_ends_at`), where every
    # request's check of `User.can_sign_in` finds it without another query.
    notice_date: Mapped[date] = mapped_column(Date)
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the last-day steps (loans, tokens, sessions, account) were carried out.
    offboarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    successor: Mapped[User | None] = relationship(foreign_keys=[successor_id])
    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])
    items: Mapped[list[HandoverItem]] = relationship(
        back_populates="departure", order_by="HandoverItem.id", cascade="all, delete-orphan"
    )

    @property
    def is_open(self) -> bool:
        return self.status == DepartureStatus.NOTICE

    @property
    def last_day(self) -> date | None:
        return self.user.last_day


class HandoverItem(Base):
    """One customer the leaver owned, the person it goes to, and (for key customers) the proof of contact.

    The "customer confirmation" rule: a key customer counts as handed over only once its new owner has
    confirmed speaking to the customer, or an approver has waived that with a reason.
    """

    __tablename__ = "handover_items"
    __table_args__ = (UniqueConstraint("departure_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    departure_id: Mapped[int] = mapped_column(ForeignKey("departures.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # None: on the reassignment list, still owned by the leaver until someone is named.
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    key: Mapped[bool] = mapped_column(Boolean, default=False)
    key_reason: Mapped[str] = mapped_column(String(100), default="")
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_date: Mapped[date | None] = mapped_column(Date)
    confirmation_note: Mapped[str | None] = mapped_column(Text)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    waived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waived_reason: Mapped[str | None] = mapped_column(Text)
    # The customer's own word, through the link in the letter introducing the new owner: "contacted" or
    # "not_contacted" (one contact saying "not contacted" outweighs another's "contacted").
    customer_answer: Mapped[str | None] = mapped_column(String(16))
    customer_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The customer went back to the shared pool instead of to a person (`departures.return_to_pool`).
    pooled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    departure: Mapped[Departure] = relationship(back_populates="items")
    customer: Mapped[Customer] = relationship()
    to_user: Mapped[User | None] = relationship(foreign_keys=[to_user_id])
    confirmed_by: Mapped[User | None] = relationship(foreign_keys=[confirmed_by_id])
    waived_by: Mapped[User | None] = relationship(foreign_keys=[waived_by_id])

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def disputed(self) -> bool:
        """A key customer said the new owner has not contacted them, and no approver waived that since."""
        if not self.key or self.customer_answer != "not_contacted" or self.customer_answered_at is None:
            return False
        return self.waived_at is None or self.waived_at < self.customer_answered_at

    @property
    def moved(self) -> bool:
        """The customer has since been given to someone outside this handover (a manager's assignment, a
        rotation, a claim from the pool): it is with neither the leaver nor the person the item gave it
        to, nor in the pool the item sent it to. It is then no longer the departure's to move, nor the
        item's recipient's to confirm: only its present owner may receive the item."""
        return self.customer.owner_id not in {self.departure.user_id, self.to_user_id}

    @property
    def state(self) -> str:
        """Where the item stands, in one word (the API's `state`, the command line's listing)."""
        if self.pooled_at is not None:
            return "pooled"
        if self.to_user_id is None:
            return "unassigned"
        if self.confirmed:
            return "confirmed"
        if self.waived_at is not None:
            return "waived"
        return "pending" if self.key else "handed_over"

    @property
    def settled(self) -> bool:
        """Handed over for good: returned to the shared pool, or has a new owner and, if key, a
        confirmation or a waiver."""
        if self.pooled_at is not None:
            return True
        if self.to_user_id is None or self.transferred_at is None:
            return False
        return not self.key or self.confirmed_at is not None or self.waived_at is not None
