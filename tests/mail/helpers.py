"""Acts through the real services, and the outbox read back, for the mail tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.loans.helpers import PLACE, REASON, make_document
from vault.core.context import AccessContext
from vault.mail import SendResult, send_pending, transport_for
from vault.models import Document, Loan, MailOutbox, User, utcnow
from vault.services import departures, loans

CTX = AccessContext(client_addr="10.0.0.5", user_agent="tests")

__all__ = ["CTX", "decide", "give_notice", "make_document", "outbox", "request", "send"]


def request(rt: Any, borrower_id: int, document_id: int, **kwargs: Any) -> int:
    with rt.db.session() as session:
        loan = loans.request_loan(rt, session, session.get(User, borrower_id), session.get(Document, document_id),
                                  reason=REASON, category="complaint", place=PLACE, days=kwargs.pop("days", 3),
                                  ctx=CTX, **kwargs)
        return loan.id


def decide(rt: Any, approver_id: int, loan_id: int, verb: str, comment: str = "") -> None:
    with rt.db.session() as session:
        getattr(loans, verb)(rt, session, session.get(User, approver_id), session.get(Loan, loan_id),
                             comment=comment, ctx=CTX)


def give_notice(rt: Any, user_id: int) -> None:
    """The person gives notice (a last day twenty days out, no successor), at the command line."""
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, session.get(User, user_id),
                                   last_day=departures.today(rt.settings) + timedelta(days=20),
                                   successor=None, ctx=AccessContext.cli())


def send(rt: Any, now: datetime | None = None, batch: int = 100) -> SendResult:
    return send_pending(rt.db, transport_for(rt.settings), now or utcnow(), batch)


def outbox(rt: Any) -> list[MailOutbox]:
    with rt.db.session() as session:
        return list(session.scalars(select(MailOutbox).order_by(MailOutbox.id)))
