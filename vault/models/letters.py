"""Letters to a customer's main contacts introducing their new account manager, and the customer's answer.

A letter row names the change it is about (`change_key`), the contact it went to (by position in the sealed
record and a masked label, never the address), the language it was written in, and the single-use link it
carried: only the link's SHA-256 is kept, so a copy of the database cannot answer in a customer's name. The
customer's comment, if any, is sealed into the contact log, not kept here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer
from vault.models.users import User


class LetterAnswer(StrEnum):
    CONTACTED = "contacted"  # the contact confirms the new manager has been in touch
    NOT_CONTACTED = "not_contacted"  # the contact says nobody has been in touch yet


class CustomerLetter(Base):
    __tablename__ = "customer_letters"
    # One letter per contact position and per earlier address for one change: a second emission of the same
    # change, or a retry, writes nothing more (the positions of the two kinds of letter are counted apart).
    __table_args__ = (UniqueConstraint("change_key", "earlier_address", "contact_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # The departure's handover item when the change came from one (a withdrawn departure leaves the letter).
    handover_item_id: Mapped[int | None] = mapped_column(ForeignKey("handover_items.id", ondelete="SET NULL"),
                                                         index=True)
    cause: Mapped[str] = mapped_column(String(32))
    previous_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    new_owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # One change of owner, one key: a second emission of the same change writes nothing more.
    change_key: Mapped[str] = mapped_column(String(120))
    # The contact's position in the record; for a letter to an earlier address, which names no current
    # contact, the address's place among this change's earlier addresses (1, 2, ...).
    contact_index: Mapped[int] = mapped_column(Integer)
    # Sent to an address a leaver's edit took out of the record (`vault.services.letter_addresses`), besides
    # the letters to the record's own addresses: told apart on the handover status, the customer's page,
    # the API and the audit log, so whoever reads an answer knows which mailbox gave it.
    earlier_address: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    contact_label: Mapped[str] = mapped_column(String(120), default="")  # masked name ("J••• N•••")
    language: Mapped[str] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(String(16))

    customer: Mapped[Customer] = relationship()
    new_owner: Mapped[User] = relationship(foreign_keys=[new_owner_id])

    def state(self, now: datetime) -> str:
        """"answered", "revoked", "expired" or "open": what the link would do if followed now."""
        if self.answered_at is not None:
            return "answered"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "open"
