"""Views (openings of a document's content), the per-person, per-document quota counter, and the
per-person daily tallies the early-warning rules count from."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.documents import Document, DocumentVersion
from vault.models.users import User


class ViewStatus(StrEnum):
    RESERVED = "reserved"  # quota spent, content URL handed out, no byte delivered yet
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    PARTIAL = "partial"  # the stream broke midway: stays spent
    REFUNDED = "refunded"  # never delivered a byte: the unit went back


SPENT_STATUSES = (ViewStatus.RESERVED, ViewStatus.DELIVERING, ViewStatus.DELIVERED, ViewStatus.PARTIAL)


class DocumentView(Base):
    __tablename__ = "document_views"
    # The early-warning rules read one person's views over a window (the 30-day median): the first index
    # reads that window, not the person's whole history. After every view they ask whether the person
    # opened anything from the view's address, named place and declared place before: the others find
    # the first such view at once, where reading the person's views for it cost a step per earlier view.
    __table_args__ = (
        Index("ix_document_views_user_opened", "user_id", "opened_at"),
        Index("ix_document_views_user_address", "user_id", "client_addr"),
        Index("ix_document_views_user_named_place", "user_id", "named_place"),
        Index("ix_document_views_user_declared_place", "user_id", text("lower(trim(declared_place))")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    download: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    declared_place: Mapped[str] = mapped_column(String(200), default="")
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    named_place: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[ViewStatus] = mapped_column(String(16), default=ViewStatus.RESERVED, index=True)
    # SHA-256 of the single-use content URL's secret; the secret itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    # The viewer: until when its page URLs work, and what the heartbeats told (time on the document).
    window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds_open: Mapped[int] = mapped_column(Integer, default=0)
    pages_seen: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the early-warning rules ran on this view: after its opening committed (`services.view_alerts`).
    alerts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    document: Mapped[Document] = relationship()
    version: Mapped[DocumentVersion] = relationship()
    user: Mapped[User] = relationship()


class QuotaUsage(Base):
    """Units spent by one person on one document, across all loans and versions.

    A single counter row updated with a conditional UPDATE is what makes fifty simultaneous opens on a
    quota of three give exactly three views on both SQLite and PostgreSQL.
    """

    __tablename__ = "quota_usage"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    # This person's own quota of the document, set by a custodian or an approver (None: the document's).
    view_quota: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")


class ViewTally(Base):
    """A person's views of one customer's files on one local day (the working-hours timezone's day).

    The early-warning rules run after every view and count the person's views today and the customers
    of their last 24 hours. Counted from the views table, that read every view of the day again, so a
    bulk reader's every further view cost more (at the 3,000th view of a day the read took 1.7 ms in the
    database, 0.16 ms from here). Counted from here it reads a row per customer and day, however many
    views.

    A view is added in the unit that claims its evaluation (`vault.services.view_facts.tally`), which
    happens once per view, so the tally counts each evaluated view once. `last_at` is the latest opening
    counted, which tells whether the customer falls within the last 24 hours. Rows older than the
    rules' windows are purged by the maintenance sweep.
    """

    __tablename__ = "view_tallies"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    views: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
