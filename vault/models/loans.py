"""Loans of documents to borrowers, the approvers' decisions on them, and quota extensions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.documents import Document
from vault.models.users import User


class LoanStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"  # approved, waiting for a custodian's release (grade 3)
    ACTIVE = "active"
    REJECTED = "rejected"
    RETURNED = "returned"
    EXPIRED = "expired"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"  # the borrower took the request back before anyone decided it


OPEN_STATUSES = (LoanStatus.REQUESTED, LoanStatus.APPROVED, LoanStatus.ACTIVE)


class LoanKind(StrEnum):
    LOAN = "loan"
    EXTENSION = "extension"  # more views on a document whose quota is spent


class Category(StrEnum):
    VISIT_PREPARATION = "visit_preparation"
    CONTRACT_RENEWAL = "contract_renewal"
    COMPLAINT = "complaint"
    HANDOVER = "handover"
    QUOTATION = "quotation"
    OTHER = "other"


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[LoanKind] = mapped_column(String(16), default=LoanKind.LOAN)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    category: Mapped[Category] = mapped_column(String(32))
    declared_place: Mapped[str] = mapped_column(String(200))
    days: Mapped[int] = mapped_column(Integer)
    extra_views: Mapped[int] = mapped_column(Integer, default=0)
    # Fixed at request time, so a later change of the grade's rule or a departure does not move the goal posts.
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    release_required: Mapped[bool] = mapped_column(default=False)
    status: Mapped[LoanStatus] = mapped_column(String(16), default=LoanStatus.REQUESTED, index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[str | None] = mapped_column(Text)
    # When the file's custodian is away, an approver names another custodian for this one release.
    release_custodian_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    document: Mapped[Document] = relationship()
    borrower: Mapped[User] = relationship(foreign_keys=[borrower_id])
    released_by: Mapped[User | None] = relationship(foreign_keys=[released_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])
    decisions: Mapped[list[LoanDecision]] = relationship(
        back_populates="loan", order_by="LoanDecision.decided_at", cascade="all, delete-orphan"
    )

    @property
    def approver_ids(self) -> set[int]:
        return {d.approver_id for d in self.decisions if d.decision == "approve"}


class LoanDecision(Base):
    __tablename__ = "loan_decisions"
    __table_args__ = (UniqueConstraint("loan_id", "approver_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    loan: Mapped[Loan] = relationship(back_populates="decisions")
    approver: Mapped[User] = relationship()
