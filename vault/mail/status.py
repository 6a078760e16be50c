"""What `vault mail status` reports: the outbox by status, how long the oldest mail has waited, and the
latest errors, so an operator sees a stuck queue before people notice missing mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.models import MailStatus
from vault.models.mail import MailOutbox


@dataclass
class OutboxStatus:
    counts: dict[str, int]
    oldest_waiting: timedelta | None
    last_errors: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, recipient, status, error


def outbox_status(session: Session, now: datetime, *, errors: int = 5) -> OutboxStatus:
    counts = {str(status): 0 for status in MailStatus}
    for status, count in session.execute(select(MailOutbox.status, func.count()).group_by(MailOutbox.status)):
        counts[str(status)] = int(count)
    oldest = session.scalar(select(func.min(MailOutbox.created_at))
                            .where(MailOutbox.status.in_([MailStatus.QUEUED, MailStatus.SENDING])))
    if oldest is not None and oldest.tzinfo is None:  # min() bypasses the column type on SQLite
        from datetime import UTC

        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
    rows = session.execute(
        select(MailOutbox.id, MailOutbox.recipient, MailOutbox.status, MailOutbox.last_error)
        .where(MailOutbox.last_error.is_not(None), MailOutbox.status != MailStatus.SENT)
        .order_by(MailOutbox.id.desc()).limit(errors)
    ).all()
    return OutboxStatus(counts=counts, oldest_waiting=(now - oldest) if oldest is not None else None,
                        last_errors=[(r.id, r.recipient, str(r.status), r.last_error) for r in rows])
