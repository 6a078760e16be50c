"""The loan lifecycle through the pages: request, approve, release, read, return, reject, revoke, expire.

Each act is checked in the database and in the audit log: exactly one success record naming the
right person, loan, document and customer.
"""

from __future__ import annotations

import re
from datetime import timedelta

from tests.loans.helpers import PLACE, REASON, TEXT, content_url, loan_rows, one_loan, set_rows, used, view_rows
from vault.models import Document, Loan, LoanStatus, ViewStatus, utcnow


def _customer(rt, document_id):
    with rt.db.session() as session:
        return session.get(Document, document_id).customer_id


def test_grade2_loan_from_request_to_return(world, rt):
    doc = world.document(2)
    ann, paula = world.browser("ann"), world.browser("paula")

    form = ann.get(f"/documents/{doc}/loans/new")
    assert form.status_code == 200
    assert "at most 30 days" in form.get_data(as_text=True)
    audit = world.audit.mark()
    response = ann.request_loan(doc, days=5)
    assert response.status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert response.headers["Location"].endswith(f"/loans/{loan.id}")
    assert (loan.status, loan.borrower_id, loan.days, loan.approvals_required, loan.release_required) == (
        LoanStatus.REQUESTED, world.ids["ann"], 5, 1, False)
    event = audit.one_success("loan:request", "ann", loan_id=loan.id, document_id=doc,
                              customer_id=_customer(rt, doc), reason_text=REASON, declared_place=PLACE)
    assert '"category":"visit_preparation"' in event.detail

    queue = paula.get("/loans/approvals").get_data(as_text=True)
    assert REASON in queue and "Ann" in queue
    audit.mark()
    assert paula.decide(loan.id, "approve", comment="Fine for the visit").status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert loan.status == LoanStatus.ACTIVE
    assert abs(loan.due_at - (loan.approved_at + timedelta(days=5))) < timedelta(seconds=1)
    audit.one_success("loan:approve", "paula", loan_id=loan.id, document_id=doc, reason_text="Fine for the visit")

    mine = ann.get("/loans").get_data(as_text=True)
    assert "Account plan" in mine and "active" in mine
    panel = ann.get(f"/loans/{loan.id}").get_data(as_text=True)
    assert "Views left: 3 of 3" in panel
    assert REASON in panel  # the open-view form is pre-filled from the loan

    audit.mark()
    opened = ann.open_view(doc, download=True)
    assert opened.status_code == 303
    opened = ann.get(opened.headers["Location"])
    assert "Views left: 2" in opened.get_data(as_text=True)
    view_event = audit.one_success("document:download", "ann", loan_id=loan.id, document_id=doc, reason_text=REASON,
                                   declared_place=PLACE)
    assert view_event.client_addr == "127.0.0.1"
    content = ann.get(content_url(opened))
    assert content.status_code == 200
    assert content.get_data() == TEXT
    [view] = view_rows(rt)
    assert (view.status, view.bytes_sent, view.loan_id) == (ViewStatus.DELIVERED, len(TEXT), loan.id)
    audit.one_success("content:delivered", "ann", document_id=doc, loan_id=loan.id)
    assert used(rt, world.ids["ann"], doc) == 1

    audit.mark()
    assert ann.decide(loan.id, "return").status_code == 302
    assert one_loan(rt, document_id=doc).status == LoanStatus.RETURNED
    audit.one_success("loan:return", "ann", loan_id=loan.id, document_id=doc)
    refused = ann.open_view(doc)
    assert refused.status_code == 403
    assert "You need an active, approved loan" in refused.get_data(as_text=True)


def test_grade3_loan_waits_for_a_custodian(world, rt):
    doc = world.document(3)
    ann, paula, cora = world.browser("ann"), world.browser("paula"), world.browser("cora")
    ann.request_loan(doc, days=7)
    loan = one_loan(rt, document_id=doc)
    assert loan.release_required
    paula.decide(loan.id, "approve")
    loan = one_loan(rt, document_id=doc)
    assert (loan.status, loan.due_at) == (LoanStatus.APPROVED, None)

    audit = world.audit.mark()
    refused = ann.open_view(doc)
    assert refused.status_code == 403
    audit.one_refusal("document:view", "no_active_loan", "ann", document_id=doc)

    desk = cora.get("/loans/custody").get_data(as_text=True)
    assert "Approved loans waiting for release" in desk and "Account plan" in desk
    audit.mark()
    assert cora.decide(loan.id, "release", next="/loans/custody").headers["Location"].endswith("/loans/custody")
    loan = one_loan(rt, document_id=doc)
    assert loan.status == LoanStatus.ACTIVE and loan.released_by_id == world.ids["cora"]
    assert abs(loan.due_at - (loan.released_at + timedelta(days=7))) < timedelta(seconds=1)
    audit.one_success("loan:release", "cora", loan_id=loan.id, document_id=doc)
    assert "Active loans, by due time" in cora.get("/loans/custody").get_data(as_text=True)


def test_reject_needs_a_comment_and_ends_the_request(world, rt):
    doc = world.document(2)
    ann, paula = world.browser("ann"), world.browser("paula")
    ann.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    audit = world.audit.mark()
    refused = paula.decide(loan.id, "reject", comment="   ")
    assert refused.status_code == 403
    assert "Say why you reject the request." in refused.get_data(as_text=True)
    audit.one_refusal("loan:reject", "comment_required", "paula", loan_id=loan.id)
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED

    audit.mark()
    assert paula.decide(loan.id, "reject", comment="No visit is planned").status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert (loan.status, loan.closed_by_id, loan.close_reason) == (
        LoanStatus.REJECTED, world.ids["paula"], "No visit is planned")
    audit.one_success("loan:reject", "paula", loan_id=loan.id, reason_text="No visit is planned")
    audit.mark()
    assert world.browser("quinn").decide(loan.id, "approve").status_code == 404  # no longer open to approvers
    audit.one_refusal("loan:approve", "not_found", "quinn", loan_id=loan.id)


def test_revoke_needs_a_reason_and_ends_access_at_once(world, rt):
    doc = world.document(2)
    ann, paula, cora = world.browser("ann"), world.browser("paula"), world.browser("cora")
    ann.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    paula.decide(loan.id, "approve")
    # a reservation made before the revocation...
    opened = ann.get(ann.open_view(doc, download=True).headers["Location"])

    audit = world.audit.mark()
    short = cora.decide(loan.id, "revoke", reason="bad")
    assert short.status_code == 403
    audit.one_refusal("loan:revoke", "reason_too_short", "cora", loan_id=loan.id)

    audit.mark()
    assert cora.decide(loan.id, "revoke", reason="The customer asked us to stop").status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert (loan.status, loan.closed_by_id) == (LoanStatus.REVOKED, world.ids["cora"])
    audit.one_success("loan:revoke", "cora", loan_id=loan.id, reason_text="The customer asked us to stop")
    # ...is given back with the revocation, and its URL delivers nothing.
    [refund] = audit.since("view:refund")
    assert '"cause":"loan_revoked"' in refund.detail
    assert used(rt, world.ids["ann"], doc) == 0
    assert ann.get(content_url(opened)).status_code == 403
    assert view_rows(rt)[0].status == ViewStatus.REFUNDED
    assert ann.open_view(doc).status_code == 403


def test_an_approver_may_revoke_but_not_return(world, rt):
    doc = world.document(2)
    ann, paula = world.browser("ann"), world.browser("paula")
    ann.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    paula.decide(loan.id, "approve")
    audit = world.audit.mark()
    assert paula.decide(loan.id, "return").status_code == 403
    audit.one_refusal("loan:return", "not_permitted", "paula")
    audit.mark()
    assert world.browser("quinn").decide(loan.id, "revoke", reason="Visit cancelled by the customer").status_code == 302
    audit.one_success("loan:revoke", "quinn", loan_id=loan.id)


def test_a_loan_past_due_expires_when_touched(world, rt):
    doc = world.document(2)
    ann, paula = world.browser("ann"), world.browser("paula")
    ann.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    paula.decide(loan.id, "approve")
    set_rows(rt, Loan, Loan.id == loan.id, due_at=utcnow() - timedelta(minutes=1))

    audit = world.audit.mark()
    refused = ann.open_view(doc)
    assert refused.status_code == 403
    assert "Your loan of this document has expired." in refused.get_data(as_text=True)
    assert one_loan(rt, document_id=doc).status == LoanStatus.EXPIRED  # kept, though the opening was refused
    expiry = audit.since("loan:expire")
    assert [(e.actor_name, e.loan_id) for e in expiry] == [("system", loan.id)]
    assert [(e.action, e.reason_code) for e in audit.since(outcome="denied")] == [("document:view", "loan_expired")]
    assert audit.since("document:view", "allowed") == []
    assert view_rows(rt) == []

    audit.mark()
    assert ann.decide(loan.id, "return").status_code == 403
    audit.one_refusal("loan:return", "loan_expired", "ann", loan_id=loan.id)
    # A new request is possible once the old loan is over.
    assert ann.request_loan(doc).status_code == 302


def test_another_persons_loan_is_not_found(world, rt):
    doc = world.document(2)
    world.browser("ann").request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    bob = world.browser("bob")
    audit = world.audit.mark()
    assert bob.get(f"/loans/{loan.id}").status_code == 404
    audit.one_refusal("loan:read", "not_found", "bob", loan_id=loan.id)
    audit.mark()
    assert bob.decide(loan.id, "return").status_code == 404
    audit.one_refusal("loan:return", "not_found", "bob", loan_id=loan.id)
    assert bob.get(f"/loans/{loan.id + 1000}").status_code == 404
    assert "Account plan" not in bob.get("/loans").get_data(as_text=True)
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED


def test_document_page_shows_the_reading_panel(world, rt):
    doc = world.document(1)
    page = world.browser("ann").get(f"/documents/{doc}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Views left: 10 of 10" in text
    assert f'action="/documents/{doc}/view"' in text
    assert 'name="download"' in text  # grade 1 may be downloaded
    grade3 = world.document(3)
    text = world.browser("bob").get(f"/documents/{grade3}").get_data(as_text=True)
    assert f'action="/documents/{grade3}/loans/new"' in text and f'action="/documents/{grade3}/view"' not in text
    assert "At most 7 days for this grade." in text


def _heading(page) -> tuple[str, str]:
    """The page's first heading and its title, as a reader meets them."""
    html = page.get_data(as_text=True)
    heading = re.search(r"<h1>\s*(.*?)\s*</h1>", html, re.S)
    title = re.search(r"<title>\s*(.*?)\s*·", html, re.S)
    assert heading is not None and title is not None
    return heading.group(1), title.group(1)


def test_a_request_is_headed_a_request_until_it_is_approved(world, rt):
    """The page of a request nobody has approved was headed "Loan 1", as if the borrower held the file:
    a request waiting, refused or taken back is a request; from the approval on, it is a loan."""
    ann, paula = world.browser("ann"), world.browser("paula")
    doc = world.document(2)

    ann.request_loan(doc)
    waiting = one_loan(rt, document_id=doc)
    for who in (ann, paula):
        assert _heading(who.get(f"/loans/{waiting.id}")) == (f"Loan request {waiting.id}",) * 2
    assert paula.decide(waiting.id, "reject", comment="No visit is planned").status_code == 302
    assert _heading(ann.get(f"/loans/{waiting.id}")) == (f"Loan request {waiting.id}",) * 2

    ann.request_loan(doc)
    taken_back = next(loan for loan in loan_rows(rt, document_id=doc) if loan.id != waiting.id)
    assert ann.post(f"/loans/{taken_back.id}/withdraw", {}).status_code == 302
    assert one_loan(rt, id=taken_back.id).status == LoanStatus.WITHDRAWN
    assert _heading(ann.get(f"/loans/{taken_back.id}")) == (f"Loan request {taken_back.id}",) * 2

    ann.request_loan(doc)
    granted = max(loan_rows(rt, document_id=doc), key=lambda loan: loan.id)
    assert paula.decide(granted.id, "approve").status_code == 302
    assert _heading(ann.get(f"/loans/{granted.id}")) == (f"Loan {granted.id}",) * 2
    assert ann.post(f"/loans/{granted.id}/return", {}).status_code == 302
    assert one_loan(rt, id=granted.id).status == LoanStatus.RETURNED
    assert _heading(ann.get(f"/loans/{granted.id}")) == (f"Loan {granted.id}",) * 2


def test_more_views_are_headed_a_request_until_they_are_granted(world, rt):
    """A request for more views read "More views: request N" also once granted; granted, it is no longer
    a request."""
    ann, paula = world.browser("ann"), world.browser("paula")
    doc = world.document(2)
    ann.request_loan(doc)
    assert paula.decide(one_loan(rt, document_id=doc).id, "approve").status_code == 302
    for _ in range(rt.settings.grade(2).views):  # more views are asked for once the quota is spent
        assert ann.open_view(doc).status_code == 303
    assert ann.request_extension(doc).status_code == 302
    extension = max(loan_rows(rt, document_id=doc), key=lambda loan: loan.id)
    assert extension.kind == "extension"
    assert _heading(ann.get(f"/loans/{extension.id}")) == (f"More views: request {extension.id}",) * 2
    assert paula.decide(extension.id, "approve").status_code == 302
    assert one_loan(rt, id=extension.id).status == LoanStatus.APPROVED
    assert _heading(ann.get(f"/loans/{extension.id}")) == (f"More views {extension.id}",) * 2


def test_a_grade3_loan_approved_and_waiting_for_its_release_is_headed_a_loan(world, rt):
    doc = world.document(3)
    world.browser("ann").request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    assert world.browser("paula").decide(loan.id, "approve").status_code == 302
    assert one_loan(rt, id=loan.id).status == LoanStatus.APPROVED
    assert _heading(world.browser("ann").get(f"/loans/{loan.id}")) == (f"Loan {loan.id}",) * 2
