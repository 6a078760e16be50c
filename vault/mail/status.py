"""What `vault mail status` reports: the outbox by status, how long the oldest mail has waited, and the
latest errors, so an operator sees a stuck queue before people notice missing mail.

A letter to a customer's main contact is shown with the contact's mailbox masked to its domain, in the
address and in the error's text: the contacts are opened only under a reveal quota or as the product's own
recorded act (`customer:contacts_system_read`), and the mail server that refused, with its reply, is all
a repair needs. The staff's own mail keeps its address (the operator may have to tell that person). A withheld
letter's reason is shown with its code as well (`withheld_code`), which a script can match where the sentence
beside it may be reworded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.mail.kinds import Kind
from vault.mail.retention import masked
from vault.models import MailStatus
from vault.models.mail import MailOutbox


class ShownError(NamedTuple):
    """One of the latest errors: the mail, its address and status as an operator may read them, the error (a
    server's reply, or why a letter was withheld), and a withheld letter's reason code (`withheld_code`)."""

    id: int
    recipient: str
    status: str
    error: str
    code: str | None = None


@dataclass
class OutboxStatus:
    counts: dict[str, int]
    oldest_waiting: timedelta | None
    last_errors: list[ShownError] = field(default_factory=list)


def outbox_status(session: Session, now: datetime, *, errors: int = 5) -> OutboxStatus:
    counts = {str(status): 0 for status in MailStatus}
    for status, count in session.execute(select(MailOutbox.status, func.count()).group_by(MailOutbox.status)):
        counts[str(status)] = int(count)
    oldest = session.scalar(select(func.min(MailOutbox.created_at))
                            .where(MailOutbox.status.in_([MailStatus.QUEUED, MailStatus.SENDING])))
    if oldest is not None and oldest.tzinfo is None:  # min() bypasses the column type on SQLite
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
    rows = session.execute(
        select(MailOutbox.id, MailOutbox.kind, MailOutbox.recipient, MailOutbox.status, MailOutbox.last_error,
               MailOutbox.withheld_code)
        .where(MailOutbox.last_error.is_not(None), MailOutbox.status != MailStatus.SENT)
        .order_by(MailOutbox.id.desc()).limit(errors)
    ).all()
    return OutboxStatus(counts=counts, oldest_waiting=(now - oldest) if oldest is not None else None,
                        last_errors=[_shown(r.id, r.kind, r.recipient, str(r.status), r.last_error or "",
                                            r.withheld_code) for r in rows])


def _shown(row_id: int, kind: str, recipient: str, status: str, error: str, code: str | None) -> ShownError:
    """One error as the operator sees it: a customer's mailbox masked wherever it appears."""
    return ShownError(row_id, shown_recipient(kind, recipient), status, shown_error(kind, recipient, error), code)


def shown_recipient(kind: str, recipient: str) -> str:
    """A mail's address as an operator may read it: a customer's contact masked to the domain, the staff's
    own in clear (the operator may have to tell that person)."""
    return masked(recipient) if kind == Kind.CUSTOMER_LETTER else recipient


def shown_error(kind: str, recipient: str, error: str) -> str:
    """A mail server's reply with a customer's mailbox masked wherever it appears in it."""
    if kind != Kind.CUSTOMER_LETTER:
        return error
    return re.sub(re.escape(recipient), masked(recipient), error, flags=re.IGNORECASE)
