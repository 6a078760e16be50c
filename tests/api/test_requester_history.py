"""What an approver weighs a request by: the borrower's earlier loans, views and refusals, with the
refusals of what was typed (a reason too short, no place) left out: a slip corrected at once is not held
against anyone, while a refused open of a file without a loan is."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.api.conftest import assert_error
from vault.models import Loan
from vault.services import loans


def test_a_slip_in_a_form_is_not_counted_against_the_borrower(api: Any, rt: Any) -> None:
    document_id = api.upload(api.customer(), grade=2)
    slip = {"document_id": document_id, "reason": "short", "category": "visit_preparation", "place": "Office",
            "days": 5}
    assert_error(api.post("/api/v1/loans", "bob", json=slip), 403, "reason_too_short")
    assert_error(api.post(f"/api/v1/documents/{document_id}/views", "bob",
                          json={"reason": "Preparing the visit", "place": "Office"}), 403, "no_active_loan")
    api.loan(document_id)
    with rt.db.session() as session:
        loan = session.scalars(select(Loan).where(Loan.document_id == document_id)).one()
        assert loans.requester_history(session, loan).refusals == 1
        assert loans.customer_history(session, loan).refusals == 1
