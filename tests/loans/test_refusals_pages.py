"""Every way a loan act is refused through the pages: wrong role, wrong person, bad input, wrong state.

Each refusal shows its reason in plain words, leaves no success record and exactly one refusal record
with the reason code.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.loans.helpers import PLACE, loan_rows, one_loan, set_status
from vault.config.settings import DEFAULT_GRADES
from vault.models import Document, LoanStatus, QuotaUsage, UserStatus


def _approved(world, rt, doc, borrower="ann", approver="paula"):
    world.browser(borrower).request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    assert world.browser(approver).decide(loan.id, "approve").status_code == 302
    return loan


def test_wrong_roles_are_refused_by_the_gate(world, rt):
    doc = world.document(2)
    carl, ann = world.browser("carl"), world.browser("ann")
    audit = world.audit.mark()
    assert carl.get(f"/documents/{doc}/loans/new").status_code == 403  # a compiler without the borrower role
    audit.one_refusal("loan:request", "not_permitted", "carl")
    ann.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    for verb, action in (("approve", "loan:approve"), ("reject", "loan:reject"), ("release", "loan:release")):
        audit.mark()
        response = ann.decide(loan.id, verb, comment="I would like this")
        assert response.status_code == 403
        assert "Your roles do not allow this." in response.get_data(as_text=True)
        audit.one_refusal(action, "not_permitted", "ann")
    audit.mark()
    assert world.browser("paula").open_view(doc).status_code == 403  # approvers do not read
    audit.one_refusal("document:view", "not_permitted", "paula")
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED


def test_nobody_approves_their_own_loan(world, rt):
    doc = world.document(2)
    abby = world.browser("abby")
    abby.request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    audit = world.audit.mark()
    response = abby.decide(loan.id, "approve")
    assert response.status_code == 403
    assert "Nobody decides on their own request." in response.get_data(as_text=True)
    assert "No one may approve, release or check their own request or file." in response.get_data(as_text=True)
    audit.one_refusal("loan:approve", "separation_of_duties", "abby", loan_id=loan.id, document_id=doc)
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED
    # nor is her own request in her queue
    assert "Nothing is waiting for you." in abby.get("/loans/approvals").get_data(as_text=True)


def test_the_compiler_does_not_approve_loans_of_his_file(world, rt):
    doc = world.document(2, compiler="cam")
    world.browser("ann").request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    cam = world.browser("cam")
    audit = world.audit.mark()
    response = cam.decide(loan.id, "approve")
    assert response.status_code == 403
    assert "The compiler of a file cannot decide on loans of it." in response.get_data(as_text=True)
    audit.one_refusal("loan:approve", "separation_of_duties", "cam", loan_id=loan.id)
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED


def test_a_custodian_does_not_release_a_loan_she_approved(world, rt):
    doc = world.document(3)
    loan = _approved(world, rt, doc, approver="val")
    val = world.browser("val")
    audit = world.audit.mark()
    response = val.decide(loan.id, "release")
    assert response.status_code == 403
    assert "another custodian must release it" in response.get_data(as_text=True)
    audit.one_refusal("loan:release", "separation_of_duties", "val", loan_id=loan.id)
    assert one_loan(rt, document_id=doc).status == LoanStatus.APPROVED
    assert "another custodian must release it" in val.get("/loans/custody").get_data(as_text=True)
    assert world.browser("cora").decide(loan.id, "release").status_code == 302
    assert one_loan(rt, document_id=doc).status == LoanStatus.ACTIVE


def test_the_compiler_does_not_release_or_override_his_file(world, rt):
    doc = world.document(3, compiler="cid")
    loan = _approved(world, rt, doc)
    cid = world.browser("cid")
    audit = world.audit.mark()
    assert cid.decide(loan.id, "release").status_code == 403
    audit.one_refusal("loan:release", "separation_of_duties", "cid", loan_id=loan.id)
    audit.mark()
    assert cid.post(f"/documents/{doc}/quota", {"views": "50"}).status_code == 403
    audit.one_refusal("quota:override", "separation_of_duties", "cid", document_id=doc)


def test_the_compiler_reads_his_own_file_only_through_a_loan(world, rt):
    doc = world.document(1, compiler="cole")
    cole = world.browser("cole")
    audit = world.audit.mark()
    response = cole.open_view(doc)
    assert response.status_code == 403
    assert "The compiler of a file reads it only through an approved loan" in response.get_data(as_text=True)
    audit.one_refusal("document:view", "no_active_loan", "cole", document_id=doc)
    # A grade-1 file needs no loan from anyone else...
    audit.mark()
    assert world.browser("bob").request_loan(doc).status_code == 403
    audit.one_refusal("loan:request", "loan_not_needed", "bob", document_id=doc)
    # ...but its compiler may ask for one, which an approver grants, and then reads under the quota.
    assert cole.request_loan(doc, days=2).status_code == 302
    loan = one_loan(rt, document_id=doc)
    assert loan.approvals_required == 1
    world.browser("paula").decide(loan.id, "approve")
    response, body = cole.read(doc)
    assert response.status_code == 200 and body


@pytest.mark.parametrize(("reason", "category", "days", "code", "words"), [
    ("too short", "complaint", 5, "reason_too_short", "at least 10 characters"),
    ("  ?!.... ,,, --- ", "complaint", 5, "reason_not_meaningful", "not only punctuation"),
    ("Visit preparation", "visit_preparation", 5, "reason_copies_category", "a category name is not a reason"),
    ("  complaint!!!!!  ", "other", 5, "reason_copies_category", "a category name is not a reason"),
    ("The customer called about a wrong invoice", "gossip", 5, "invalid_category", "listed categories"),
    ("The customer called about a wrong invoice", "complaint", 31, "days_too_long", "at most 30 days"),
    ("The customer called about a wrong invoice", "complaint", 0, "days_invalid", "at least one day"),
])
def test_bad_requests_are_refused_and_keep_what_was_typed(world, rt, reason, category, days, code, words):
    doc = world.document(2)
    ann = world.browser("ann")
    audit = world.audit.mark()
    response = ann.request_loan(doc, reason=reason, category=category, days=days)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert words in page
    assert f'value="{PLACE}"' in page  # the form comes back filled in: nothing typed is lost
    event = audit.one_refusal("loan:request", code, "ann", document_id=doc)
    assert event.declared_place == PLACE
    assert loan_rows(rt) == []


def test_place_is_required_and_grade3_loans_are_short(world, rt):
    doc = world.document(3)
    ann = world.browser("ann")
    audit = world.audit.mark()
    assert ann.request_loan(doc, place="   ").status_code == 403
    audit.one_refusal("loan:request", "place_required", "ann")
    audit.mark()
    response = ann.request_loan(doc, days=8)
    assert "at most 7 days" in response.get_data(as_text=True)
    audit.one_refusal("loan:request", "days_too_long", "ann")
    audit.mark()
    response = ann.request_loan(doc, days="many")
    assert response.status_code == 400  # not a number at all: the form says so, nothing is decided
    assert "Enter a whole number of days." in response.get_data(as_text=True)
    # Only the read of the file the form names again is recorded.
    assert [(e.action, e.outcome) for e in audit.since()] == [("document:read", "allowed")]


def test_one_open_request_per_document(world, rt):
    doc = world.document(2)
    ann = world.browser("ann")
    ann.request_loan(doc)
    audit = world.audit.mark()
    assert ann.request_loan(doc).status_code == 403
    audit.one_refusal("loan:request", "loan_already_open", "ann")


def test_the_same_approver_cannot_approve_twice(world, rt):
    doc = world.document(2)
    world.browser("ann").request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    paula = world.browser("paula")
    paula.decide(loan.id, "approve")
    audit = world.audit.mark()
    response = paula.decide(loan.id, "approve")
    assert response.status_code == 403
    assert "You have already decided on this request." in response.get_data(as_text=True)
    audit.one_refusal("loan:approve", "already_decided", "paula", loan_id=loan.id)


TWO_APPROVERS = {"grades": {**DEFAULT_GRADES, 2: replace(DEFAULT_GRADES[2], approvals=2)}}


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS])
def test_two_approvers_when_the_grade_says_so(world, rt, settings_overrides):
    doc = world.document(2)
    world.browser("ann").request_loan(doc)
    loan = one_loan(rt, document_id=doc)
    assert loan.approvals_required == 2
    paula = world.browser("paula")
    paula.decide(loan.id, "approve")
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED
    audit = world.audit.mark()
    assert paula.decide(loan.id, "approve").status_code == 403
    audit.one_refusal("loan:approve", "already_decided", "paula", loan_id=loan.id)
    assert one_loan(rt, document_id=doc).status == LoanStatus.REQUESTED
    audit.mark()
    world.browser("quinn").decide(loan.id, "approve")
    assert one_loan(rt, document_id=doc).status == LoanStatus.ACTIVE
    event = audit.one_success("loan:approve", "quinn", loan_id=loan.id)
    assert '"approvals":2' in event.detail


def test_a_departing_borrower_needs_a_second_approver(world, rt):
    set_status(rt, world.ids["ann"], UserStatus.DEPARTING)
    grade2, grade1 = world.document(2), world.document(1)
    ann = world.browser("ann")
    ann.request_loan(grade2)
    loan = one_loan(rt, document_id=grade2)
    assert loan.approvals_required == 2
    world.browser("paula").decide(loan.id, "approve")
    assert one_loan(rt, document_id=grade2).status == LoanStatus.REQUESTED
    assert "on notice" in world.browser("quinn").get("/loans/approvals").get_data(as_text=True)
    world.browser("quinn").decide(loan.id, "approve")
    assert one_loan(rt, document_id=grade2).status == LoanStatus.ACTIVE
    # Grade 1 needs no loan, on notice or not; on notice it needs the kind of need.
    refused = ann.open_view(grade1)
    assert refused.status_code == 403 and "Reason code: category_required" in refused.get_data(as_text=True)
    assert 'id="view-category"' in refused.get_data(as_text=True)  # asked again, the rest kept
    response, _body = ann.read(grade1, category="quotation")
    assert response.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"policy": {"departure": {"on_notice": "refuse"}}}])
def test_a_departing_borrower_is_refused_where_configured(world, rt, settings_overrides):
    set_status(rt, world.ids["ann"], UserStatus.DEPARTING)
    doc = world.document(3)
    audit = world.audit.mark()
    response = world.browser("ann").request_loan(doc)
    assert response.status_code == 403
    assert "People on notice cannot request loans" in response.get_data(as_text=True)
    audit.one_refusal("loan:request", "departing_refused", "ann", document_id=doc)
    assert world.browser("bob").request_loan(doc).status_code == 302  # others are not affected


def test_a_departed_borrower_can_do_nothing(world, rt):
    doc = world.document(2)
    ann = world.browser("ann")
    set_status(rt, world.ids["ann"], UserStatus.DEPARTED)
    response = ann.request_loan(doc)
    assert response.status_code == 302 and "/login" in response.headers["Location"]  # the session ended
    assert loan_rows(rt) == []


def test_a_custodian_who_may_borrow_cannot_set_a_quota(world, rt):
    """Finding 1: a custodian who is also a borrower raised a quota to 1000 and spent it himself."""
    doc = world.document(3)
    kira = world.browser("kira")
    for data in ({"views": "1000", "person": "kira"}, {"views": "1000"}, {"views": "1000", "person": "ann"}):
        audit = world.audit.mark()
        assert kira.post(f"/documents/{doc}/quota", data).status_code == 403, data
        audit.one_refusal("quota:override", "quota_own_reach", "kira", document_id=doc)
    abby = world.browser("abby")  # an approver who may borrow: no document-wide override either
    audit = world.audit.mark()
    assert abby.post(f"/documents/{doc}/quota", {"views": "1000"}).status_code == 403
    audit.one_refusal("quota:override", "quota_own_reach", "abby", document_id=doc)
    with rt.db.session() as session:
        assert session.get(Document, doc).view_quota is None
        assert session.scalars(select(QuotaUsage).where(QuotaUsage.view_quota.is_not(None))).all() == []
