"""The mail outbox and each person's choice of how to be told about each kind of event.

Mail is written to the outbox in the same transaction as the act it is about (a loan request rolled
back sends nothing) and sent later by `vault.mail.sender`, which never holds a transaction open while
it talks to the SMTP server.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vault.config.addresses import masked
from vault.models.base import Base, UTCDateTime, utcnow


class MailStatus(StrEnum):
    QUEUED = "queued"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a sender; `next_attempt_at` is the end of that claim
    SENT = "sent"
    FAILED = "failed"  # given up after the last attempt, or refused for good by the server
    DIGEST = "digest"  # waiting for the recipient's daily digest
    DIGESTED = "digested"  # included in a digest mail (`digest_id`)
    WITHHELD = "withheld"  # never sent: its recipient may no longer be told (`vault.mail.audience`)


def forgotten(address: str) -> dict[str, str]:
    """The column values of a row whose mail has gone, or may never go: masked address, no text
    (`vault.mail.retention` says when). Here, beside the columns it names, so that the services' maintenance
    sweep (`letters.forget_unsendable`) forgets a letter that can never go exactly as the sender forgets a sent
    mail."""
    return {"recipient": masked(address), "body_text": "", "body_html": ""}


class MailMode(StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"
    OFF = "off"


class MailOutbox(Base):
    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(String(16), default=MailStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why the sender withheld a customer letter: the stable code of `letters.repair_refusal`
    # (`vault.mail.audience`), kept apart from `last_error`'s sentence so that what acts on the reason (the
    # re-issue's contact-log note, `vault mail status`) never has to read it back out of wording that may change.
    # None for every other row, and for a letter withheld before codes were kept that migration 0029 could not
    # classify.
    withheld_code: Mapped[str | None] = mapped_column(String(32))
    # The reason code `vault mail retry --all-failed` last recorded (a denied `mail:retry`) when it skipped this
    # row (`vault.mail.repair.record_refused`): run from cron, it records a skip again only when the reason
    # changed. Cleared when the mail is retried.
    retry_refused_code: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Same key, same mail: a retried act or a second sender cannot queue it twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id"))


class MailPreference(Base):
    __tablename__ = "mail_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[MailMode] = mapped_column(String(16), default=MailMode.IMMEDIATE)
