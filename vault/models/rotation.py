"""Rotation of account managers: proposals to move a customer from one owner to another in the same team,
each decided by a manager, and the new owner's confirmation that they reached the customer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer
from vault.models.users import User


class ProposalStatus(StrEnum):
    OPEN = "open"  # waiting for a manager
    APPROVED = "approved"  # ownership moved
    SKIPPED = "skipped"  # a manager kept the customer where it is, saying why
    VOID = "void"  # the owner changed another way (departure, assignment) before anyone decided


class RotationProposal(Base):
    """One proposed move of one customer. At most one open proposal per customer (a partial unique index),
    so proposing twice, or from two places at once, never doubles a proposal."""

    __tablename__ = "rotation_proposals"
    __table_args__ = (
        Index("uq_rotation_proposals_open_customer", "customer_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    segment: Mapped[str] = mapped_column(String(16))
    status: Mapped[ProposalStatus] = mapped_column(String(16), default=ProposalStatus.OPEN, index=True)
    # The team the swap stays in: the direct manager the current and proposed owners share.
    team_manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Who the plan proposed, and who is to receive it (the same unless a manager picked someone else).
    proposed_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    owner_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    # The handover task of the new owner: done when they confirm having reached the customer.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_note: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship()
    from_user: Mapped[User] = relationship(foreign_keys=[from_user_id])
    proposed_user: Mapped[User] = relationship(foreign_keys=[proposed_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def is_open(self) -> bool:
        return self.status == ProposalStatus.OPEN

    @property
    def awaiting_contact(self) -> bool:
        """Approved, and the new owner has not yet confirmed reaching the customer."""
        return self.status == ProposalStatus.APPROVED and self.confirmed_at is None
